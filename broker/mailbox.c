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
