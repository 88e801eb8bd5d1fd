/* migrate.c: `liangdi-broker migrate`: a broker store copied into another through the
 * two stores' tables of operations: registry first (links before removals, since a
 * link to a removed node cannot be made; retired keys last), then marks, then
 * mailboxes entry by entry. */
#include "migrate.h"

#include <stdlib.h>
#include <string.h>
#include "codec.h"
#include "log.h"

/* One node of the source registry, copied out of the callback. */
typedef struct mg_node {
    char    *id, *name, *key;
    bool     removed;
    int64_t  last_seen;
    uint64_t pushed, fetched;
} mg_node_t;

typedef struct mg_nodes {
    mg_node_t *list;
    size_t     n, cap;
    bool       nomem;
} mg_nodes_t;

static void mg_nodes_free(mg_nodes_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->list[i].id);
        free(l->list[i].name);
        free(l->list[i].key);
    }
    free(l->list);
    memset(l, 0, sizeof *l);
}

static int mg_collect_node(void *ctx, const bk_node_info_t *info)
{
    mg_nodes_t *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        mg_node_t *grown = realloc(l->list, cap * sizeof *grown);
        if (!grown) {
            l->nomem = true;
            return 1;
        }
        l->list = grown;
        l->cap = cap;
    }
    mg_node_t *n = &l->list[l->n++];
    n->id = strdup(info->id);
    n->name = strdup(info->name);
    n->key = strdup(info->key);
    n->removed = info->removed;
    n->last_seen = info->last_seen;
    n->pushed = info->pushed;
    n->fetched = info->fetched;
    if (!n->id || !n->name || !n->key) {
        l->nomem = true;
        return 1;
    }
    return 0;
}

/* Copying links and marks: the target and how it went. */
typedef struct mg_copy {
    bk_registry_t       *registry;
    bk_mailbox_t        *mailbox;
    bk_migrate_counts_t *counts;
    ld_error_t          *err;
    int                  rc;
    const char          *node;       /* the mailbox being copied */
    uint64_t             floor;
    uint64_t             last;       /* the last position copied from it */
} mg_copy_t;

static int mg_copy_link(void *ctx, const char *a, const char *b)
{
    mg_copy_t *c = ctx;
    int rc = bk_registry_add_link(c->registry, a, b, c->err);
    if (rc == LD_EEXIST)
        rc = 0;                   /* copied before */
    if (rc < 0) {
        c->rc = rc;
        return 1;
    }
    c->counts->links++;
    return 0;
}

static int mg_copy_mark(void *ctx, const char *origin, uint64_t seq)
{
    mg_copy_t *c = ctx;
    c->rc = bk_mailbox_import_mark(c->mailbox, origin, seq, c->err);
    if (c->rc < 0)
        return 1;
    c->counts->marks++;
    return 0;
}

static int mg_copy_entry(void *ctx, uint64_t position, const uint8_t *body, size_t len)
{
    mg_copy_t *c = ctx;
    c->rc = bk_mailbox_import_entry(c->mailbox, c->node, c->floor, position, body, len, c->err);
    if (c->rc < 0)
        return c->rc;
    c->last = position;
    c->counts->entries++;
    return 0;
}

static int mg_copy_retired(void *ctx, const char *key, const char *node)
{
    mg_copy_t *c = ctx;
    c->rc = bk_registry_import_retired(c->registry, key, node, c->err);
    if (c->rc < 0)
        return 1;
    c->counts->retired++;
    return 0;
}

/* The registry: every node (as active), the links, the removals, then the keys that
 * `node rekey` retired (so that none is registered again in the new store). */
static int mg_registry(bk_registry_t *src, mg_copy_t *c, const mg_nodes_t *nodes)
{
    for (size_t i = 0; i < nodes->n; i++) {
        const mg_node_t *n = &nodes->list[i];
        int rc = bk_registry_add_node(c->registry, n->id, n->name, n->key, c->err);
        if (rc == LD_EEXIST)
            continue;             /* copied before, with its statistics */
        if (rc < 0)
            return rc;
        bk_registry_note_seen(c->registry, n->id, n->last_seen);
        bk_registry_note_pushed(c->registry, n->id, n->pushed);
        bk_registry_note_fetched(c->registry, n->id, n->fetched);
        c->counts->nodes++;
    }
    int rc = bk_registry_flush(c->registry, c->err);
    if (rc == 0)
        rc = bk_registry_each_link(src, mg_copy_link, c, c->err);
    if (rc == 0)
        rc = c->rc;
    for (size_t i = 0; rc == 0 && i < nodes->n; i++) {
        if (!nodes->list[i].removed)
            continue;
        rc = bk_registry_remove_node(c->registry, nodes->list[i].id, c->err);
        if (rc == LD_EINVAL)
            rc = 0;               /* removed by an earlier copy */
    }
    if (rc == 0)
        rc = bk_registry_each_retired(src, mg_copy_retired, c, c->err);
    if (rc == 0)
        rc = c->rc;
    return rc;
}

int bk_migrate(const bk_store_spec_t *from, const bk_store_spec_t *to,
               bk_migrate_counts_t *counts, ld_error_t *err)
{
    bk_registry_t *src_reg = NULL;
    bk_mailbox_t *src_mb = NULL, *dst_mb = NULL;
    mg_nodes_t nodes = { 0 };
    mg_copy_t c = { .counts = counts, .err = err };
    int rc = LD_EIO;
    memset(counts, 0, sizeof *counts);
    if (from->kind == to->kind && strcmp(from->where, to->where) == 0)
        return ld_error_set(err, LD_EINVAL, "--from and --to are the same store (%s)",
                            from->where);
    src_reg = bk_registry_open(from->registry, from->where, false, err);
    if (src_reg)
        src_mb = bk_mailbox_new(from->mailbox, from->where, false, err);
    if (src_mb)
        c.registry = bk_registry_open(to->registry, to->where, true, err);
    if (c.registry)
        dst_mb = bk_mailbox_new(to->mailbox, to->where, true, err);
    if (!dst_mb)
        goto out;
    c.mailbox = dst_mb;
    rc = bk_registry_each_node(src_reg, mg_collect_node, &nodes, err);
    if (rc == 0 && nodes.nomem)
        rc = ld_error_set(err, LD_ENOMEM, "out of memory reading the registry of %s",
                          from->where);
    if (rc == 0)
        rc = mg_registry(src_reg, &c, &nodes);
    if (rc == 0)
        rc = bk_mailbox_export_marks(src_mb, mg_copy_mark, &c, err);
    if (rc == 0)
        rc = c.rc;
    /* The floor: every position the old store ever gave, to any node. */
    for (size_t i = 0; rc == 0 && i < nodes.n; i++) {
        uint64_t last = 0;
        rc = bk_mailbox_last_position(src_mb, nodes.list[i].id, &last, err);
        if (rc == 0 && last > c.floor)
            c.floor = last;
    }
    for (size_t i = 0; rc == 0 && i < nodes.n; i++) {
        uint64_t remaining = 0;
        c.node = nodes.list[i].id;
        c.last = 0;
        for (;;) {
            uint64_t after = c.last;
            int taken = bk_mailbox_fetch(src_mb, c.node, after, LD_BATCH_MAX, mg_copy_entry, &c,
                                         &remaining, err);
            if (taken < 0) {
                rc = taken;
                break;
            }
            if (taken == 0 || remaining == 0)
                break;
        }
        if (rc == 0)
            ld_debug("migrate: mailbox of %s copied up to its position %llu", c.node,
                     (unsigned long long)c.last);
    }
out:
    bk_mailbox_destroy(&dst_mb);
    bk_registry_destroy(&c.registry);
    bk_mailbox_destroy(&src_mb);
    bk_registry_destroy(&src_reg);
    mg_nodes_free(&nodes);
    return rc;
}
