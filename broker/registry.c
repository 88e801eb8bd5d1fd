/* registry.c: the nodes the broker knows, the links between them, and who may address
 * whom: argument checks, the in-memory snapshot the server and ZAP read, and the
 * statistics buffer, over a store reached through its table of operations. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A node of the snapshot. */
typedef struct reg_node {
    char *id;
    char *key;
    bool  removed;
} reg_node_t;

/* A link of the snapshot, a < b. */
typedef struct reg_link {
    char *a;
    char *b;
} reg_link_t;

struct bk_registry {
    const bk_registry_ops_t *ops;
    void           *store;
    bool            loaded;       /* a snapshot is in place and current as far as known */
    reg_node_t     *nodes;        /* sorted by id */
    size_t          nnodes;
    reg_link_t     *links;        /* sorted by (a, b) */
    size_t          nlinks;
    bk_node_stat_t *stats;        /* sorted by id */
    size_t          nstats, stats_cap;
    int64_t         rechecked_ms; /* monotonic, of the last bk_registry_recheck reload */
};

#define REG_RECHECK_MS 1000

static void reg_free_snapshot(reg_node_t *nodes, size_t nnodes, reg_link_t *links,
                              size_t nlinks)
{
    for (size_t i = 0; i < nnodes; i++) {
        free(nodes[i].id);
        free(nodes[i].key);
    }
    free(nodes);
    for (size_t i = 0; i < nlinks; i++) {
        free(links[i].a);
        free(links[i].b);
    }
    free(links);
}

bk_registry_t *bk_registry_open(const bk_registry_ops_t *ops, const char *where, bool create,
                                ld_error_t *err)
{
    bk_registry_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory opening %s", where);
        return NULL;
    }
    self->ops = ops ? ops : &bk_registry_sqlite;
    self->store = self->ops->open(where, create, err);
    if (!self->store)
        goto err;
    if (bk_registry_refresh(self, NULL, err) < 0)
        goto err;
    return self;
err:
    bk_registry_destroy(&self);
    return NULL;
}

bk_registry_t *bk_registry_new(const char *path, bool create, ld_error_t *err)
{
    return bk_registry_open(&bk_registry_sqlite, path, create, err);
}

void bk_registry_destroy(bk_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bk_registry_t *self = *self_p;
    if (self->store && self->nstats > 0)
        bk_registry_flush(self, NULL);
    reg_free_snapshot(self->nodes, self->nnodes, self->links, self->nlinks);
    free(self->stats);
    if (self->store)
        self->ops->close(&self->store);
    free(self);
    *self_p = NULL;
}

/* ---- checks ---- */

static int reg_check_id(const char *what, const char *id, ld_error_t *err)
{
    if (!id || !ld_id_valid(id))
        return ld_error_set(err, LD_EINVAL, "%s '%s' is not a valid node id "
                            "(1 to 64 of a-z 0-9 . _ -, starting with a letter or digit)",
                            what, id ? id : "");
    return 0;
}

/* Checks a node id and a public key given for it. */
static int reg_check_node_key(const char *id, const char *key, ld_error_t *err)
{
    int rc = reg_check_id("node id", id, err);
    if (rc == 0 && (!key || !ld_key_valid(key)))
        rc = ld_error_set(err, LD_EINVAL, "key '%s' is not a CURVE public key "
                          "(40 characters of Z85)", key ? key : "");
    return rc;
}

int bk_registry_key_taken(ld_error_t *err, const char *key, const char *node, bool retired)
{
    return ld_error_set(err, LD_EEXIST, retired
                        ? "key %s was retired from node %s; a retired key is not used again"
                        : "key %s is already registered to node %s", key, node);
}

/* Checks both ends of a link and puts them in order: *lo < *hi. */
static int reg_link_ends(const char *a, const char *b, const char **lo, const char **hi,
                         ld_error_t *err)
{
    int rc = reg_check_id("node", a, err);
    if (rc == 0)
        rc = reg_check_id("node", b, err);
    if (rc < 0)
        return rc;
    int cmp = strcmp(a, b);
    if (cmp == 0)
        return ld_error_set(err, LD_EINVAL, "a node cannot be linked to itself (%s)", a);
    *lo = cmp < 0 ? a : b;
    *hi = cmp < 0 ? b : a;
    return 0;
}

/* ---- commands ---- */

int bk_registry_add_node(bk_registry_t *self, const char *id, const char *name,
                         const char *key, ld_error_t *err)
{
    int rc = reg_check_node_key(id, key, err);
    if (rc < 0)
        return rc;
    if (!name || !*name)
        name = id;
    if (strlen(name) > BK_NAME_MAX || !ld_utf8_valid(name, strlen(name)))
        return ld_error_set(err, LD_EINVAL, "name of node %s is not UTF-8 text of at most "
                            "%d bytes", id, BK_NAME_MAX);
    return self->ops->add_node(self->store, id, name, key, err);
}

int bk_registry_remove_node(bk_registry_t *self, const char *id, ld_error_t *err)
{
    int rc = reg_check_id("node id", id, err);
    if (rc < 0)
        return rc;
    return self->ops->remove_node(self->store, id, err);
}

int bk_registry_set_key(bk_registry_t *self, const char *id, const char *key,
                        ld_error_t *err)
{
    int rc = reg_check_node_key(id, key, err);
    return rc < 0 ? rc : self->ops->set_key(self->store, id, key, err);
}

int bk_registry_add_link(bk_registry_t *self, const char *a, const char *b, ld_error_t *err)
{
    const char *lo = NULL, *hi = NULL;
    int rc = reg_link_ends(a, b, &lo, &hi, err);
    if (rc < 0)
        return rc;
    return self->ops->add_link(self->store, lo, hi, err);
}

int bk_registry_remove_link(bk_registry_t *self, const char *a, const char *b,
                            ld_error_t *err)
{
    const char *lo = NULL, *hi = NULL;
    int rc = reg_link_ends(a, b, &lo, &hi, err);
    if (rc < 0)
        return rc;
    return self->ops->remove_link(self->store, lo, hi, err);
}

int bk_registry_each_retired(bk_registry_t *self, bk_retired_fn fn, void *ctx,
                             ld_error_t *err)
{
    return self->ops->each_retired(self->store, fn, ctx, err);
}

int bk_registry_import_retired(bk_registry_t *self, const char *key, const char *node,
                               ld_error_t *err)
{
    int rc = reg_check_node_key(node, key, err);
    return rc < 0 ? rc : self->ops->import_retired(self->store, key, node, err);
}

int bk_registry_each_node(bk_registry_t *self, bk_node_fn fn, void *ctx, ld_error_t *err)
{
    return self->ops->each_node(self->store, fn, ctx, err);
}

int bk_registry_each_link(bk_registry_t *self, bk_link_fn fn, void *ctx, ld_error_t *err)
{
    return self->ops->each_link(self->store, fn, ctx, err);
}

/* ---- the snapshot ---- */

/* A snapshot being read from the store. */
typedef struct reg_load {
    reg_node_t *nodes;
    reg_link_t *links;
    size_t      nnodes, ncap, nlinks, lcap;
    bool        nomem;
} reg_load_t;

static int reg_load_node(void *ctx, const bk_node_info_t *info)
{
    reg_load_t *l = ctx;
    if (l->nnodes == l->ncap) {
        size_t cap = l->ncap ? l->ncap * 2 : 16;
        reg_node_t *grown = realloc(l->nodes, cap * sizeof *grown);
        if (!grown) {
            l->nomem = true;
            return 1;
        }
        l->nodes = grown;
        l->ncap = cap;
    }
    reg_node_t *n = &l->nodes[l->nnodes++];
    n->id = strdup(info->id);
    n->key = strdup(info->key);
    n->removed = info->removed;
    if (!n->id || !n->key) {
        l->nomem = true;
        return 1;
    }
    return 0;
}

static int reg_load_link(void *ctx, const char *a, const char *b)
{
    reg_load_t *l = ctx;
    if (l->nlinks == l->lcap) {
        size_t cap = l->lcap ? l->lcap * 2 : 16;
        reg_link_t *grown = realloc(l->links, cap * sizeof *grown);
        if (!grown) {
            l->nomem = true;
            return 1;
        }
        l->links = grown;
        l->lcap = cap;
    }
    reg_link_t *k = &l->links[l->nlinks++];
    k->a = strdup(a);
    k->b = strdup(b);
    if (!k->a || !k->b) {
        l->nomem = true;
        return 1;
    }
    return 0;
}

static int reg_node_sort(const void *x, const void *y)
{
    return strcmp(((const reg_node_t *)x)->id, ((const reg_node_t *)y)->id);
}

static int reg_link_cmp(const void *key, const void *elem)
{
    const reg_link_t *k = key, *l = elem;
    int c = strcmp(k->a, l->a);
    return c ? c : strcmp(k->b, l->b);
}

int bk_registry_reload(bk_registry_t *self, ld_error_t *err)
{
    reg_load_t l = { 0 };
    int rc = self->ops->each_node(self->store, reg_load_node, &l, err);
    if (rc == 0 && !l.nomem)
        rc = self->ops->each_link(self->store, reg_load_link, &l, err);
    if (rc == 0 && l.nomem)
        rc = ld_error_set(err, LD_ENOMEM, "out of memory loading the registry");
    if (rc < 0) {
        reg_free_snapshot(l.nodes, l.nnodes, l.links, l.nlinks);
        self->loaded = false;       /* the next refresh tries again */
        return rc;
    }
    /* Kept sorted whatever order the store gave: lookups are binary searches. */
    if (l.nnodes > 1)
        qsort(l.nodes, l.nnodes, sizeof *l.nodes, reg_node_sort);
    if (l.nlinks > 1)
        qsort(l.links, l.nlinks, sizeof *l.links, reg_link_cmp);
    reg_free_snapshot(self->nodes, self->nnodes, self->links, self->nlinks);
    self->nodes = l.nodes;
    self->nnodes = l.nnodes;
    self->links = l.links;
    self->nlinks = l.nlinks;
    self->loaded = true;
    return 0;
}

int bk_registry_refresh(bk_registry_t *self, bool *changed, ld_error_t *err)
{
    bool moved = false;
    if (changed)
        *changed = false;
    int rc = self->ops->changed(self->store, &moved, err);
    if (rc < 0)
        return rc;
    if (!moved && self->loaded)
        return 0;
    rc = bk_registry_reload(self, err);
    if (rc < 0)
        return rc;
    if (changed)
        *changed = true;
    return 0;
}

int bk_registry_recheck(bk_registry_t *self, bool *reloaded, ld_error_t *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    *reloaded = false;
    if (self->rechecked_ms != 0 && now - self->rechecked_ms < REG_RECHECK_MS)
        return 0;
    self->rechecked_ms = now;
    int rc = bk_registry_reload(self, err);
    *reloaded = rc == 0;
    return rc;
}

static int reg_node_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const reg_node_t *)elem)->id);
}

static const reg_node_t *reg_find(const bk_registry_t *self, const char *id)
{
    if (!id || self->nnodes == 0)
        return NULL;
    return bsearch(id, self->nodes, self->nnodes, sizeof *self->nodes, reg_node_cmp);
}

bool bk_registry_active(const bk_registry_t *self, const char *id)
{
    const reg_node_t *n = reg_find(self, id);
    return n && !n->removed;
}

bool bk_registry_holds_key(const bk_registry_t *self, const char *id, const char *key)
{
    const reg_node_t *n = reg_find(self, id);
    return n && !n->removed && key && strcmp(n->key, key) == 0;
}

const char *bk_registry_node_by_key(const bk_registry_t *self, const char *key)
{
    for (size_t i = 0; key && i < self->nnodes; i++)
        if (!self->nodes[i].removed && strcmp(self->nodes[i].key, key) == 0)
            return self->nodes[i].id;
    return NULL;
}

bool bk_registry_may_address(const bk_registry_t *self, const char *from, const char *to)
{
    if (!from || !to)
        return false;
    int cmp = strcmp(from, to);
    if (cmp == 0)
        return true;
    reg_link_t key = { .a = (char *)(cmp < 0 ? from : to), .b = (char *)(cmp < 0 ? to : from) };
    return self->nlinks > 0
        && bsearch(&key, self->links, self->nlinks, sizeof *self->links, reg_link_cmp) != NULL;
}

/* ---- statistics ---- */

/* The pending statistics of `id`, added in order when new; NULL if out of memory or
 * the id is too long to be a node's. */
static bk_node_stat_t *reg_stat(bk_registry_t *self, const char *id)
{
    size_t lo = 0, hi = self->nstats;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(id, self->stats[mid].id);
        if (c == 0)
            return &self->stats[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (strlen(id) > LD_ID_MAX)
        return NULL;
    if (self->nstats == self->stats_cap) {
        size_t cap = self->stats_cap ? self->stats_cap * 2 : 16;
        bk_node_stat_t *grown = realloc(self->stats, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->stats = grown;
        self->stats_cap = cap;
    }
    memmove(&self->stats[lo + 1], &self->stats[lo], (self->nstats - lo) * sizeof *self->stats);
    bk_node_stat_t *s = &self->stats[lo];
    memset(s, 0, sizeof *s);
    strcpy(s->id, id);
    self->nstats++;
    return s;
}

void bk_registry_note_seen(bk_registry_t *self, const char *id, int64_t now)
{
    bk_node_stat_t *s = reg_stat(self, id);
    if (s && now > s->seen)
        s->seen = now;
}

void bk_registry_note_pushed(bk_registry_t *self, const char *id, uint64_t n)
{
    bk_node_stat_t *s = reg_stat(self, id);
    if (s)
        s->pushed += n;
}

void bk_registry_note_fetched(bk_registry_t *self, const char *id, uint64_t n)
{
    bk_node_stat_t *s = reg_stat(self, id);
    if (s)
        s->fetched += n;
}

int bk_registry_flush(bk_registry_t *self, ld_error_t *err)
{
    if (self->nstats == 0)
        return 0;
    size_t written = 0;
    int rc = self->ops->write_stats(self->store, self->stats, self->nstats, &written, err);
    if (written > self->nstats)
        written = self->nstats;
    /* what was added is not added again; the rest stays for the next flush */
    memmove(self->stats, self->stats + written, (self->nstats - written) * sizeof *self->stats);
    self->nstats -= written;
    return rc < 0 ? rc : 0;
}
