/* mailbox.c: the mailbox interface: holds one store and its table of operations and
 * passes every call through, so callers never know which store they talk to. */
#include "mailbox.h"

#include <stdlib.h>

struct bk_mailbox {
    const bk_mailbox_ops_t *ops;
    void                   *store;
};

bk_mailbox_t *bk_mailbox_new(const bk_mailbox_ops_t *ops, const char *path, bool create,
                             ld_error_t *err)
{
    bk_mailbox_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory opening the mailbox store");
        return NULL;
    }
    self->ops = ops ? ops : &bk_mailbox_sqlite;
    self->store = self->ops->open(path, create, err);
    if (!self->store) {
        bk_mailbox_destroy(&self);
        return NULL;
    }
    return self;
}

void bk_mailbox_destroy(bk_mailbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bk_mailbox_t *self = *self_p;
    if (self->store)
        self->ops->close(&self->store);
    free(self);
    *self_p = NULL;
}

int bk_mailbox_push(bk_mailbox_t *self, const char *origin, const bk_push_item_t *items,
                    size_t n, uint64_t *upto, size_t *stored, ld_error_t *err)
{
    return self->ops->push_batch(self->store, origin, items, n, upto, stored, err);
}

int bk_mailbox_fetch(bk_mailbox_t *self, const char *node, uint64_t after, uint32_t credit,
                     bk_fetch_fn fn, void *ctx, uint64_t *remaining, ld_error_t *err)
{
    return self->ops->fetch(self->store, node, after, credit, fn, ctx, remaining, err);
}

int bk_mailbox_ack(bk_mailbox_t *self, const char *node, uint64_t upto, ld_error_t *err)
{
    return self->ops->ack(self->store, node, upto, err);
}

int bk_mailbox_depth(bk_mailbox_t *self, const char *node, uint64_t *depth, ld_error_t *err)
{
    return self->ops->depth(self->store, node, depth, err);
}

int bk_mailbox_pushed_upto(bk_mailbox_t *self, const char *origin, uint64_t *seq,
                           ld_error_t *err)
{
    return self->ops->pushed_upto(self->store, origin, seq, err);
}

int bk_mailbox_grown_fd(bk_mailbox_t *self)
{
    return self->ops->grown_fd ? self->ops->grown_fd(self->store) : -1;
}

int bk_mailbox_take_grown(bk_mailbox_t *self, bk_grown_fn fn, void *ctx, ld_error_t *err)
{
    return self->ops->take_grown ? self->ops->take_grown(self->store, fn, ctx, err) : 0;
}

void bk_mailbox_idle(bk_mailbox_t *self)
{
    if (self->ops->idle)
        self->ops->idle(self->store);
}

uint64_t bk_mailbox_written(bk_mailbox_t *self)
{
    return self->ops->written ? self->ops->written(self->store) : 0;
}

int bk_mailbox_sync_fd(bk_mailbox_t *self)
{
    return self->ops->sync_fd ? self->ops->sync_fd(self->store) : -1;
}

int bk_mailbox_synced(bk_mailbox_t *self, uint64_t *ticket, ld_error_t *err)
{
    *ticket = 0;
    return self->ops->synced ? self->ops->synced(self->store, ticket, err) : 0;
}

int bk_mailbox_settle(bk_mailbox_t *self, ld_error_t *err)
{
    return self->ops->settle ? self->ops->settle(self->store, err) : 0;
}

const char *bk_mailbox_kind(const bk_mailbox_t *self)
{
    return self->ops->name;
}

/* The error for a migration operation the store does not have. */
static int mb_cannot(const bk_mailbox_t *self, const char *what, ld_error_t *err)
{
    return ld_error_set(err, LD_EINVAL, "the %s store cannot %s", self->ops->name, what);
}

int bk_mailbox_export_marks(bk_mailbox_t *self, bk_mark_fn fn, void *ctx, ld_error_t *err)
{
    if (!self->ops->export_marks)
        return mb_cannot(self, "list its high-water marks (it is not a migration source)", err);
    return self->ops->export_marks(self->store, fn, ctx, err);
}

int bk_mailbox_last_position(bk_mailbox_t *self, const char *node, uint64_t *last,
                             ld_error_t *err)
{
    if (!self->ops->last_position)
        return mb_cannot(self, "tell its last positions (it is not a migration source)", err);
    return self->ops->last_position(self->store, node, last, err);
}

int bk_mailbox_import_mark(bk_mailbox_t *self, const char *origin, uint64_t seq,
                           ld_error_t *err)
{
    if (!self->ops->import_mark)
        return mb_cannot(self, "take high-water marks (it is not a migration target)", err);
    return self->ops->import_mark(self->store, origin, seq, err);
}

int bk_mailbox_import_entry(bk_mailbox_t *self, const char *node, uint64_t floor,
                            uint64_t old_position, const uint8_t *body, size_t len,
                            ld_error_t *err)
{
    if (!self->ops->import_entry)
        return mb_cannot(self, "take copied entries (it is not a migration target)", err);
    return self->ops->import_entry(self->store, node, floor, old_position, body, len, err);
}
