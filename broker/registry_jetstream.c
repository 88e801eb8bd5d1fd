/* registry_jetstream.c: the shared registry store: nodes, keys and links in JetStream
 * key-value buckets, so that every broker front-end sees a node added, removed or
 * linked on any of them.
 *
 * Bucket LIANGDI_REGISTRY holds three kinds of key (node ids written with
 * bk_js_token, so that a '.' in an id does not split a key):
 *   node.<id>       "<removed 0|1>\t<public key>\t<id>\t<name>"
 *   key.<hex>       "<id>": the public key (its Z85 text in hex) is taken by that node;
 *                   "<id>\tretired": it was that node's, until `node rekey` replaced it
 *   link.<a>.<b>    "1", a < b
 * Each command checks and writes with create-only or compare-and-set writes, so two
 * front-ends racing on the same id, key or link cannot both win.  A key is reserved
 * before its node is written; a reservation left by an interrupted `node add` of the
 * same id is taken over.  Statistics live in their own bucket, LIANGDI_STATS
 * (<id> -> "<last seen> <pushed> <fetched>"), so that writing them is not a registry
 * change.
 *
 * Whether the registry changed is a cheap look at a counter: a plain subscription to
 * the registry bucket's subjects counts every update published, and every front-end
 * reloads its snapshot when the count moved, once more half a second later (the
 * update may not have reached every replica at the first look), and every 30 s
 * regardless.  Reading everything lists the bucket's keys from the stream's subjects
 * and gets each: nothing is created on the servers, so reading works the same with
 * one server of three down (a consumer's creation may wait for the peer it was
 * placed on). */
#include "registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jetstream.h"
#include "log.h"

#define RJ_BUCKET        "LIANGDI_REGISTRY"
#define RJ_STATS_BUCKET  "LIANGDI_STATS"
#define RJ_FEED_SUBJECTS "$KV." RJ_BUCKET ".>"
#define RJ_RELOAD_MS     30000
#define RJ_RECHECK_MS    500
#define RJ_CAS_TRIES     16
#define RJ_LIST_WAIT_MS  5000   /* a bucket just made may be unknown a moment longer */
#define RJ_LIST_PAUSE_MS 100
#define RJ_KEY_MAX       (8 + 2 * LD_ID_MAX + 2)
#define RJ_VALUE_MAX     (8 + LD_KEY_TEXT + LD_ID_MAX + BK_NAME_MAX)

typedef struct rj_store {
    bk_js_t          *js;
    kvStore          *kv;
    kvStore          *stats;
    natsSubscription *feed;
    atomic_uint       updates;     /* registry writes seen on the feed */
    unsigned          seen;        /* the count at the last look */
    bool              looked;
    bool              dirty;       /* this store wrote since the last look */
    int64_t           last_full_ms;
    int64_t           recheck_ms;  /* look again then (0: no need) */
} rj_store_t;

/* One node as read from the bucket (owned strings). */
typedef struct rj_node {
    char    *id, *name, *key;
    bool     removed;
    uint64_t rev;
} rj_node_t;

static int64_t rj_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rj_node_clear(rj_node_t *n)
{
    free(n->id);
    free(n->name);
    free(n->key);
    memset(n, 0, sizeof *n);
}

static bool rj_node_key(const char *id, char out[RJ_KEY_MAX])
{
    memcpy(out, "node.", 5);
    return bk_js_token(id, out + 5, RJ_KEY_MAX - 5);
}

static bool rj_link_key(const char *lo, const char *hi, char out[RJ_KEY_MAX])
{
    char a[LD_ID_MAX + 1], b[LD_ID_MAX + 1];
    if (!bk_js_token(lo, a, sizeof a) || !bk_js_token(hi, b, sizeof b))
        return false;
    snprintf(out, RJ_KEY_MAX, "link.%s.%s", a, b);
    return true;
}

static void rj_pubkey_key(const char *key, char out[RJ_KEY_MAX + LD_KEY_TEXT * 2])
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 4;
    memcpy(out, "key.", 4);
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        out[n++] = hex[*p >> 4];
        out[n++] = hex[*p & 15];
    }
    out[n] = '\0';
}

/* A value's bytes as a NUL-terminated string in out[size]; false if it does not fit. */
static bool rj_value(kvEntry *e, char *out, size_t size)
{
    int len = kvEntry_ValueLen(e);
    if (len < 0 || (size_t)len >= size)
        return false;
    memcpy(out, kvEntry_Value(e), (size_t)len);
    out[len] = '\0';
    return true;
}

/* Parses "<removed>\t<key>\t<id>\t<name>" into n (strings owned). */
static int rj_node_parse(const char *text, rj_node_t *n, ld_error_t *err)
{
    const char *t1 = strchr(text, '\t');
    const char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    const char *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
    if (!t3 || t1 != text + 1 || (text[0] != '0' && text[0] != '1'))
        return ld_error_set(err, LD_EIO, "a node entry of the registry is malformed");
    n->removed = text[0] == '1';
    n->key = strndup(t1 + 1, (size_t)(t2 - t1 - 1));
    n->id = strndup(t2 + 1, (size_t)(t3 - t2 - 1));
    n->name = strdup(t3 + 1);
    if (!n->key || !n->id || !n->name)
        return ld_error_set(err, LD_ENOMEM, "out of memory reading the registry");
    return 0;
}

/* Reads node `id`: 1 found (n filled), 0 not registered, or < 0. */
static int rj_node_get(rj_store_t *self, const char *id, rj_node_t *n, ld_error_t *err)
{
    char key[RJ_KEY_MAX], text[RJ_VALUE_MAX];
    kvEntry *e = NULL;
    memset(n, 0, sizeof *n);
    if (!rj_node_key(id, key))
        return ld_error_set(err, LD_EINVAL, "'%s' is not a node id", id);
    natsStatus s = kvStore_Get(&e, self->kv, key);
    if (s == NATS_NOT_FOUND)
        return 0;
    if (s != NATS_OK)
        return bk_js_fail(err, s, 0, "reading node %s", id);
    int rc = rj_value(e, text, sizeof text) ? rj_node_parse(text, n, err)
             : ld_error_set(err, LD_EIO, "the registry entry of node %s is too long", id);
    n->rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    if (rc < 0) {
        rj_node_clear(n);
        return rc;
    }
    return 1;
}

/* Formats a node's value into out[RJ_VALUE_MAX]; its length. */
static int rj_node_format(char *out, bool removed, const char *key, const char *id,
                          const char *name)
{
    return snprintf(out, RJ_VALUE_MAX, "%c\t%s\t%s\t%s", removed ? '1' : '0', key, id, name);
}

/* ---- open and close ---- */

static void rj_on_update(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    rj_store_t *self = closure;
    (void)nc;
    (void)sub;
    atomic_fetch_add(&self->updates, 1);
    natsMsg_Destroy(msg);
}

static void rj_close(void **store_p)
{
    if (!store_p || !*store_p)
        return;
    rj_store_t *self = *store_p;
    if (self->feed) {
        /* a callback under way finishes before the store goes */
        if (natsSubscription_Drain(self->feed) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(self->feed, 2000);
        natsSubscription_Destroy(self->feed);
    }
    if (self->kv)
        kvStore_Destroy(self->kv);
    if (self->stats)
        kvStore_Destroy(self->stats);
    bk_js_destroy(&self->js);
    free(self);
    *store_p = NULL;
}

static void *rj_open(const char *urls, bool create, ld_error_t *err)
{
    rj_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory opening the registry");
        return NULL;
    }
    atomic_init(&self->updates, 0);
    self->js = bk_js_new(urls, NULL, NULL, err);
    if (!self->js
        || bk_js_kv(self->js, RJ_BUCKET, create, &self->kv, err) < 0
        || bk_js_kv(self->js, RJ_STATS_BUCKET, create, &self->stats, err) < 0)
        goto err;
    natsStatus s = natsConnection_Subscribe(&self->feed, bk_js_conn(self->js), RJ_FEED_SUBJECTS,
                                            rj_on_update, self);
    if (s == NATS_OK)   /* the server has the subscription before the first look */
        s = natsConnection_FlushTimeout(bk_js_conn(self->js), BK_JS_WAIT_MS);
    if (s != NATS_OK) {
        bk_js_fail(err, s, 0, "jetstream: following the registry's updates");
        goto err;
    }
    return self;
err:
    {
        void *p = self;
        rj_close(&p);
    }
    return NULL;
}

/* ---- commands ---- */

#define RJ_RETIRED "\tretired"   /* after the id in a key's entry: no longer in use */

/* Reads a key entry's value: "<id>" or "<id>\tretired" into holder and *retired; false
 * if it is neither. */
static bool rj_key_entry(kvEntry *e, char holder[LD_ID_MAX + 1], bool *retired)
{
    char text[LD_ID_MAX + sizeof RJ_RETIRED];
    if (!rj_value(e, text, sizeof text))
        return false;
    char *tab = strchr(text, '\t');
    *retired = tab != NULL;
    if (tab != NULL) {
        if (strcmp(tab, RJ_RETIRED) != 0)
            return false;
        *tab = '\0';
    }
    if (strlen(text) > LD_ID_MAX)
        return false;
    memcpy(holder, text, strlen(text) + 1);
    return true;
}

/* The node holding public-key reservation `pk`: 1 (holder filled, *retired set), 0 none,
 * or < 0. */
static int rj_key_holder(rj_store_t *self, const char *pk, char holder[LD_ID_MAX + 1],
                         bool *retired, ld_error_t *err)
{
    char key[RJ_KEY_MAX + LD_KEY_TEXT * 2];
    kvEntry *e = NULL;
    rj_pubkey_key(pk, key);
    natsStatus s = kvStore_Get(&e, self->kv, key);
    if (s == NATS_NOT_FOUND)
        return 0;
    if (s != NATS_OK)
        return bk_js_fail(err, s, 0, "reading the holder of key %s", pk);
    bool ok = rj_key_entry(e, holder, retired);
    kvEntry_Destroy(e);
    if (!ok)
        return ld_error_set(err, LD_EIO, "the registry entry of key %s is malformed", pk);
    return 1;
}

/* Writes public key `pk`'s entry for node `id` (create-only, so that two front-ends
 * cannot give one key to two nodes): held by it, or (`retired`) retired from it.  An
 * entry of the same node and state is kept: a key reservation that an interrupted add
 * or rekey left is taken over, a retired key copied again is nothing new.  0 (*made:
 * this call wrote it), LD_EEXIST naming the node that has the key, or < 0. */
static int rj_claim_key(rj_store_t *self, const char *pk, const char *id, bool retired,
                        bool *made, ld_error_t *err)
{
    char kkey[RJ_KEY_MAX + LD_KEY_TEXT * 2], holder[LD_ID_MAX + 1];
    char value[LD_ID_MAX + sizeof RJ_RETIRED];
    bool held_retired = false;
    uint64_t rev = 0;
    *made = false;
    rj_pubkey_key(pk, kkey);
    snprintf(value, sizeof value, "%s%s", id, retired ? RJ_RETIRED : "");
    natsStatus s = kvStore_Create(&rev, self->kv, kkey, value, (int)strlen(value));
    if (s == NATS_OK) {
        *made = true;
        return 0;
    }
    int rc = rj_key_holder(self, pk, holder, &held_retired, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return bk_js_fail(err, s, 0, "writing key %s for node %s", pk, id);
    if (held_retired == retired && strcmp(holder, id) == 0)
        return 0;
    return bk_registry_key_taken(err, pk, holder, held_retired);
}

static int rj_add_node(void *store, const char *id, const char *name, const char *pk,
                       ld_error_t *err)
{
    rj_store_t *self = store;
    char nkey[RJ_KEY_MAX], kkey[RJ_KEY_MAX + LD_KEY_TEXT * 2], value[RJ_VALUE_MAX];
    rj_node_t n;
    uint64_t rev = 0;
    bool reserved = false;
    int rc = rj_node_get(self, id, &n, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        rc = ld_error_set(err, LD_EEXIST, n.removed
                          ? "node %s was removed; a removed id is not reused"
                          : "node %s is already registered", id);
        rj_node_clear(&n);
        return rc;
    }
    rc = rj_claim_key(self, pk, id, false, &reserved, err);
    if (rc < 0)
        return rc;
    rj_pubkey_key(pk, kkey);
    rj_node_key(id, nkey);
    int len = rj_node_format(value, false, pk, id, name);
    natsStatus s = kvStore_Create(&rev, self->kv, nkey, value, len);
    if (s != NATS_OK) {
        rc = rj_node_get(self, id, &n, err);
        if (rc == 1) {
            rj_node_clear(&n);
            rc = ld_error_set(err, LD_EEXIST, "node %s is already registered", id);
        } else if (rc == 0) {
            rc = bk_js_fail(err, s, 0, "adding node %s", id);
        }
        if (reserved && kvStore_Delete(self->kv, kkey) != NATS_OK)
            ld_warn("jetstream: key %s stays reserved for node %s", pk, id);
        return rc;
    }
    self->dirty = true;
    return 0;
}

static int rj_remove_node(void *store, const char *id, ld_error_t *err)
{
    rj_store_t *self = store;
    char nkey[RJ_KEY_MAX], value[RJ_VALUE_MAX];
    for (int tries = 0; tries < RJ_CAS_TRIES; tries++) {
        rj_node_t n;
        uint64_t rev = 0;
        int rc = rj_node_get(self, id, &n, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return ld_error_set(err, LD_ENOTFOUND, "node %s is not registered", id);
        if (n.removed) {
            rj_node_clear(&n);
            return ld_error_set(err, LD_EINVAL, "node %s is already removed", id);
        }
        rj_node_key(id, nkey);
        int len = rj_node_format(value, true, n.key, n.id, n.name);
        natsStatus s = kvStore_Update(&rev, self->kv, nkey, value, len, n.rev);
        rj_node_clear(&n);
        if (s == NATS_OK) {
            self->dirty = true;
            return 0;
        }
        ld_debug("removing node %s: %s; reading it again", id, natsStatus_GetText(s));
    }
    return ld_error_set(err, LD_EIO, "node %s changed under every attempt to remove it", id);
}

/* Whether node `id`'s entry holds public key `pk` now: 1 yes, 0 no, or < 0. */
static int rj_node_holds(rj_store_t *self, const char *id, const char *pk, ld_error_t *err)
{
    rj_node_t n;
    int rc = rj_node_get(self, id, &n, err);
    if (rc == 1) {
        rc = !n.removed && strcmp(n.key, pk) == 0;
        rj_node_clear(&n);
    }
    return rc;
}

/* The new key is reserved first (create-only), then the old one marked retired, then
 * the node's entry changed by compare-and-set: at every step between, the node still
 * answers to its old key only, and neither key can go to another node.  A retry that
 * finds the node already on the new key has won (an earlier attempt of ours whose
 * answer was lost, or another front-end's rekey to the same key).  A failure gives the
 * reservation back unless the node holds the key after all; after a success it is
 * written again, in case a failing rekey to the same key on another front-end gave it
 * back in between. */
static int rj_set_key(void *store, const char *id, const char *pk, ld_error_t *err)
{
    rj_store_t *self = store;
    char nkey[RJ_KEY_MAX], okey[RJ_KEY_MAX + LD_KEY_TEXT * 2], value[RJ_VALUE_MAX];
    char kkey[RJ_KEY_MAX + LD_KEY_TEXT * 2];
    char retired[LD_ID_MAX + sizeof RJ_RETIRED];
    bool reserved = false;
    int rc = LD_EIO;
    rj_node_key(id, nkey);
    rj_pubkey_key(pk, kkey);
    snprintf(retired, sizeof retired, "%s" RJ_RETIRED, id);
    for (int tries = 0; tries < RJ_CAS_TRIES; tries++) {
        rj_node_t n;
        uint64_t rev = 0;
        int found = rj_node_get(self, id, &n, err);
        if (found <= 0) {
            rc = found < 0 ? found
                           : ld_error_set(err, LD_ENOTFOUND, "node %s is not registered", id);
            goto out;
        }
        if (n.removed) {
            rc = ld_error_set(err, LD_EINVAL, "node %s is removed; a removed node gets no new "
                              "key", id);
            rj_node_clear(&n);
            goto out;
        }
        if (strcmp(n.key, pk) == 0) {
            rj_node_clear(&n);
            if (tries > 0)
                goto done;
            rc = bk_registry_key_taken(err, pk, id, false);
            goto out;
        }
        if (tries == 0 && (rc = rj_claim_key(self, pk, id, false, &reserved, err)) < 0) {
            rj_node_clear(&n);
            goto out;
        }
        rj_pubkey_key(n.key, okey);
        natsStatus s = kvStore_PutString(&rev, self->kv, okey, retired);
        if (s != NATS_OK) {
            rc = bk_js_fail(err, s, 0, "retiring key %s of node %s", n.key, id);
            rj_node_clear(&n);
            goto out;
        }
        int len = rj_node_format(value, false, pk, n.id, n.name);
        s = kvStore_Update(&rev, self->kv, nkey, value, len, n.rev);
        rj_node_clear(&n);
        if (s == NATS_OK)
            goto done;
        ld_debug("replacing the key of node %s: %s; reading it again", id,
                 natsStatus_GetText(s));
        rc = ld_error_set(err, LD_EIO, "node %s changed under every attempt to replace its "
                          "key", id);
    }
out:
    if (reserved && rj_node_holds(self, id, pk, NULL) == 0
        && kvStore_Delete(self->kv, kkey) != NATS_OK)
        ld_warn("jetstream: key %s stays reserved for node %s", pk, id);
    return rc;
done:
    if (kvStore_PutString(NULL, self->kv, kkey, id) != NATS_OK)
        ld_warn("jetstream: key %s of node %s could not be reserved again", pk, id);
    self->dirty = true;
    return 0;
}

static int rj_add_link(void *store, const char *lo, const char *hi, ld_error_t *err)
{
    rj_store_t *self = store;
    char key[RJ_KEY_MAX];
    const char *ends[2] = { lo, hi };
    uint64_t rev = 0;
    for (int i = 0; i < 2; i++) {
        rj_node_t n;
        int rc = rj_node_get(self, ends[i], &n, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return ld_error_set(err, LD_ENOTFOUND, "node %s is not registered", ends[i]);
        bool removed = n.removed;
        rj_node_clear(&n);
        if (removed)
            return ld_error_set(err, LD_EINVAL, "node %s was removed", ends[i]);
    }
    if (!rj_link_key(lo, hi, key))
        return ld_error_set(err, LD_EINVAL, "cannot name the link of %s and %s", lo, hi);
    natsStatus s = kvStore_Create(&rev, self->kv, key, "1", 1);
    if (s != NATS_OK) {
        kvEntry *e = NULL;
        natsStatus g = kvStore_Get(&e, self->kv, key);
        kvEntry_Destroy(e);
        if (g == NATS_OK)
            return ld_error_set(err, LD_EEXIST, "%s and %s are already linked", lo, hi);
        return bk_js_fail(err, s, 0, "linking %s and %s", lo, hi);
    }
    self->dirty = true;
    return 0;
}

static int rj_remove_link(void *store, const char *lo, const char *hi, ld_error_t *err)
{
    rj_store_t *self = store;
    char key[RJ_KEY_MAX];
    kvEntry *e = NULL;
    if (!rj_link_key(lo, hi, key))
        return ld_error_set(err, LD_EINVAL, "cannot name the link of %s and %s", lo, hi);
    natsStatus s = kvStore_Get(&e, self->kv, key);
    kvEntry_Destroy(e);
    if (s == NATS_NOT_FOUND)
        return ld_error_set(err, LD_ENOTFOUND, "%s and %s are not linked", lo, hi);
    if (s == NATS_OK)
        s = kvStore_Delete(self->kv, key);
    if (s != NATS_OK)
        return bk_js_fail(err, s, 0, "unlinking %s and %s", lo, hi);
    self->dirty = true;
    return 0;
}

/* ---- reading everything ---- */

typedef int (*rj_entry_fn)(void *ctx, kvEntry *e, ld_error_t *err);

/* Calls fn for the current value of every key of bucket `kv` under `prefix` ("node.",
 * "link.", "" for all): the keys are the stream's subjects, each read with a get (a
 * key deleted since has none). */
static int rj_scan(rj_store_t *self, kvStore *kv, const char *prefix, rj_entry_fn fn,
                   void *ctx, ld_error_t *err)
{
    const char *bucket = kvStore_Bucket(kv);
    char stream[96], filter[160];
    jsOptions o;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    snprintf(stream, sizeof stream, "KV_%s", bucket);
    snprintf(filter, sizeof filter, "$KV.%s.%s>", bucket, prefix);
    size_t skip = strlen("$KV.") + strlen(bucket) + 1;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = filter;
    /* The bucket was opened or made just before: a cluster may not yet know its stream
     * on the server asked (JetStream error 10059, not found) for a moment after it was
     * made with three replicas.  Asked again, for a bounded time. */
    natsStatus s;
    for (int waited = 0;; waited += RJ_LIST_PAUSE_MS) {
        jerr = 0;
        s = js_GetStreamInfo(&si, bk_js_ctx(self->js), stream, &o, &jerr);
        if (s != NATS_NOT_FOUND || waited >= RJ_LIST_WAIT_MS)
            break;
        struct timespec pause = { 0, RJ_LIST_PAUSE_MS * 1000000L };
        nanosleep(&pause, NULL);
    }
    if (s != NATS_OK)
        return bk_js_fail(err, s, jerr, "listing %s* of bucket %s", prefix, bucket);
    int rc = 0;
    for (int i = 0; rc == 0 && si->State.Subjects && i < si->State.Subjects->Count; i++) {
        const char *subject = si->State.Subjects->List[i].Subject;
        kvEntry *e = NULL;
        if (strlen(subject) <= skip)
            continue;
        s = kvStore_Get(&e, kv, subject + skip);
        if (s == NATS_NOT_FOUND)
            continue;
        if (s != NATS_OK) {
            rc = bk_js_fail(err, s, 0, "reading %s of bucket %s", subject + skip, bucket);
            break;
        }
        rc = fn(ctx, e, err);
        kvEntry_Destroy(e);
    }
    jsStreamInfo_Destroy(si);
    return rc;
}

/* Nodes or statistics collected from a scan. */
typedef struct rj_list {
    rj_node_t      *nodes;
    bk_node_stat_t *stats;
    size_t          n, cap;
} rj_list_t;

static int rj_collect_node(void *ctx, kvEntry *e, ld_error_t *err)
{
    rj_list_t *l = ctx;
    char text[RJ_VALUE_MAX];
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        rj_node_t *grown = realloc(l->nodes, cap * sizeof *grown);
        if (!grown)
            return ld_error_set(err, LD_ENOMEM, "out of memory reading the registry");
        l->nodes = grown;
        l->cap = cap;
    }
    rj_node_t *n = &l->nodes[l->n];
    memset(n, 0, sizeof *n);
    if (!rj_value(e, text, sizeof text))
        return ld_error_set(err, LD_EIO, "a node entry of the registry is too long");
    int rc = rj_node_parse(text, n, err);
    l->n++;                  /* cleared with the others, parsed or not */
    return rc;
}

static int rj_collect_stat(void *ctx, kvEntry *e, ld_error_t *err)
{
    rj_list_t *l = ctx;
    char text[96], id[LD_ID_MAX + 1];
    long long seen = 0;
    unsigned long long pushed = 0, fetched = 0;
    const char *key = kvEntry_Key(e);
    if (!key || strlen(key) > LD_ID_MAX || !rj_value(e, text, sizeof text)
        || sscanf(text, "%lld %llu %llu", &seen, &pushed, &fetched) != 3)
        return 0;                  /* a stranger in the bucket: not ours to read */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        bk_node_stat_t *grown = realloc(l->stats, cap * sizeof *grown);
        if (!grown)
            return ld_error_set(err, LD_ENOMEM, "out of memory reading node statistics");
        l->stats = grown;
        l->cap = cap;
    }
    snprintf(id, sizeof id, "%s", key);
    bk_js_untoken(id);
    bk_node_stat_t *s = &l->stats[l->n++];
    snprintf(s->id, sizeof s->id, "%s", id);
    s->seen = seen;
    s->pushed = pushed;
    s->fetched = fetched;
    return 0;
}

static int rj_cmp_node(const void *a, const void *b)
{
    return strcmp(((const rj_node_t *)a)->id, ((const rj_node_t *)b)->id);
}

static int rj_cmp_stat(const void *a, const void *b)
{
    return strcmp(((const bk_node_stat_t *)a)->id, ((const bk_node_stat_t *)b)->id);
}

static int rj_each_node(void *store, bk_node_fn fn, void *ctx, ld_error_t *err)
{
    rj_store_t *self = store;
    rj_list_t nodes = { 0 }, stats = { 0 };
    int rc = rj_scan(self, self->kv, "node.", rj_collect_node, &nodes, err);
    if (rc == 0)
        rc = rj_scan(self, self->stats, "", rj_collect_stat, &stats, err);
    if (rc == 0) {
        if (nodes.n > 1)
            qsort(nodes.nodes, nodes.n, sizeof *nodes.nodes, rj_cmp_node);
        if (stats.n > 1)
            qsort(stats.stats, stats.n, sizeof *stats.stats, rj_cmp_stat);
        size_t k = 0;
        for (size_t i = 0; i < nodes.n; i++) {
            const rj_node_t *n = &nodes.nodes[i];
            while (k < stats.n && strcmp(stats.stats[k].id, n->id) < 0)
                k++;
            const bk_node_stat_t *s = k < stats.n && strcmp(stats.stats[k].id, n->id) == 0
                                      ? &stats.stats[k] : NULL;
            bk_node_info_t info = {
                .id = n->id, .name = n->name, .key = n->key, .removed = n->removed,
                .last_seen = s ? s->seen : 0,
                .pushed = s ? s->pushed : 0,
                .fetched = s ? s->fetched : 0,
            };
            if (fn(ctx, &info) != 0)
                break;
        }
    }
    for (size_t i = 0; i < nodes.n; i++)
        rj_node_clear(&nodes.nodes[i]);
    free(nodes.nodes);
    free(stats.stats);
    return rc;
}

/* Links collected from a scan: "a\tb" strings. */
typedef struct rj_links {
    char  **pairs;
    size_t  n, cap;
} rj_links_t;

static int rj_collect_link(void *ctx, kvEntry *e, ld_error_t *err)
{
    rj_links_t *l = ctx;
    const char *key = kvEntry_Key(e);
    const char *dot = key ? strchr(key + 5, '.') : NULL;
    if (!key || strncmp(key, "link.", 5) != 0 || !dot)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char **grown = realloc(l->pairs, cap * sizeof *grown);
        if (!grown)
            return ld_error_set(err, LD_ENOMEM, "out of memory reading links");
        l->pairs = grown;
        l->cap = cap;
    }
    char *pair = strdup(key + 5);
    if (!pair)
        return ld_error_set(err, LD_ENOMEM, "out of memory reading links");
    pair[dot - (key + 5)] = '\t';
    bk_js_untoken(pair);
    l->pairs[l->n++] = pair;
    return 0;
}

static int rj_cmp_pair(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int rj_each_link(void *store, bk_link_fn fn, void *ctx, ld_error_t *err)
{
    rj_store_t *self = store;
    rj_links_t l = { 0 };
    int rc = rj_scan(self, self->kv, "link.", rj_collect_link, &l, err);
    if (rc == 0) {
        /* "a\tb" sorts as (a, b): a tab is below every id character */
        if (l.n > 1)
            qsort(l.pairs, l.n, sizeof *l.pairs, rj_cmp_pair);
        for (size_t i = 0; i < l.n; i++) {
            char *tab = strchr(l.pairs[i], '\t');
            *tab = '\0';
            if (fn(ctx, l.pairs[i], tab + 1) != 0)
                break;
        }
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.pairs[i]);
    free(l.pairs);
    return rc;
}

/* Retired keys as a scan finds them, passed on to the caller's function. */
typedef struct rj_retired_scan {
    bk_retired_fn fn;
    void         *ctx;
} rj_retired_scan_t;

/* The public key named by entry name "key.<hex>" (rj_pubkey_key's way back) into
 * out; false if the name is not one. */
static bool rj_pubkey_of(const char *name, char out[LD_KEY_TEXT + 1])
{
    if (name == NULL || strncmp(name, "key.", 4) != 0 || strlen(name + 4) != 2 * LD_KEY_TEXT)
        return false;
    for (size_t i = 0; i < LD_KEY_TEXT; i++) {
        unsigned v = 0;
        if (sscanf(name + 4 + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (char)v;
    }
    out[LD_KEY_TEXT] = '\0';
    return true;
}

static int rj_pass_retired(void *ctx, kvEntry *e, ld_error_t *err)
{
    rj_retired_scan_t *scan = ctx;
    char holder[LD_ID_MAX + 1], key[LD_KEY_TEXT + 1];
    bool retired = false;
    const char *name = kvEntry_Key(e);
    if (!rj_key_entry(e, holder, &retired) || !rj_pubkey_of(name, key))
        return ld_error_set(err, LD_EIO, "the registry entry %s is malformed",
                            name ? name : "(unnamed)");
    if (!retired)
        return 0;                                 /* a key in use */
    return scan->fn(scan->ctx, key, holder) != 0 ? 1 : 0;
}

static int rj_each_retired(void *store, bk_retired_fn fn, void *ctx, ld_error_t *err)
{
    rj_store_t *self = store;
    rj_retired_scan_t scan = { fn, ctx };
    int rc = rj_scan(self, self->kv, "key.", rj_pass_retired, &scan, err);
    return rc > 0 ? 0 : rc;
}

static int rj_import_retired(void *store, const char *pk, const char *node, ld_error_t *err)
{
    rj_store_t *self = store;
    bool made = false;
    int rc = rj_claim_key(self, pk, node, true, &made, err);
    if (made)
        self->dirty = true;
    return rc;
}

static int rj_changed(void *store, bool *changed, ld_error_t *err)
{
    rj_store_t *self = store;
    (void)err;
    unsigned updates = atomic_load(&self->updates);
    int64_t now = rj_now_ms();
    bool moved = updates != self->seen;
    bool recheck = self->recheck_ms != 0 && now >= self->recheck_ms;
    *changed = !self->looked || self->dirty || moved || recheck
               || now - self->last_full_ms >= RJ_RELOAD_MS;
    if (*changed)
        self->last_full_ms = now;
    if (moved || self->dirty)
        self->recheck_ms = now + RJ_RECHECK_MS;
    else if (recheck)
        self->recheck_ms = 0;
    self->looked = true;
    self->dirty = false;
    self->seen = updates;
    return 0;
}

static int rj_write_stat(rj_store_t *self, const bk_node_stat_t *st, ld_error_t *err)
{
    char key[LD_ID_MAX + 1], text[96];
    if (!bk_js_token(st->id, key, sizeof key))
        return 0;
    for (int tries = 0; tries < RJ_CAS_TRIES; tries++) {
        kvEntry *e = NULL;
        long long seen = 0;
        unsigned long long pushed = 0, fetched = 0;
        uint64_t rev = 0, written = 0;
        natsStatus s = kvStore_Get(&e, self->stats, key);
        if (s == NATS_OK) {
            rev = kvEntry_Revision(e);
            if (!rj_value(e, text, sizeof text)
                || sscanf(text, "%lld %llu %llu", &seen, &pushed, &fetched) != 3)
                seen = 0, pushed = 0, fetched = 0;
            kvEntry_Destroy(e);
        } else if (s != NATS_NOT_FOUND) {
            return bk_js_fail(err, s, 0, "reading the statistics of %s", st->id);
        }
        if (st->seen > seen)
            seen = st->seen;
        pushed += st->pushed;
        fetched += st->fetched;
        int len = snprintf(text, sizeof text, "%lld %llu %llu", seen, pushed, fetched);
        s = rev == 0 ? kvStore_Create(&written, self->stats, key, text, len)
                     : kvStore_Update(&written, self->stats, key, text, len, rev);
        if (s == NATS_OK)
            return 0;
    }
    return ld_error_set(err, LD_EIO, "the statistics of %s changed under every attempt to "
                        "write them", st->id);
}

static int rj_write_stats(void *store, const bk_node_stat_t *stats, size_t n, size_t *written,
                          ld_error_t *err)
{
    *written = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = rj_write_stat(store, &stats[i], err);
        if (rc < 0)
            return rc;
        (*written)++;
    }
    return 0;
}

const bk_registry_ops_t bk_registry_jetstream = {
    .name        = "jetstream",
    .open        = rj_open,
    .close       = rj_close,
    .add_node    = rj_add_node,
    .remove_node = rj_remove_node,
    .set_key     = rj_set_key,
    .each_retired   = rj_each_retired,
    .import_retired = rj_import_retired,
    .add_link    = rj_add_link,
    .remove_link = rj_remove_link,
    .each_node   = rj_each_node,
    .each_link   = rj_each_link,
    .changed     = rj_changed,
    .write_stats = rj_write_stats,
};
