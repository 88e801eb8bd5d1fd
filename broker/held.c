/* held.c: replies held until durable (held.h): an array used as a queue, each entry
 * one allocation holding its routing id, its notify list and the names in it. */
#include "held.h"

#include <stdlib.h>
#include <string.h>
#include "error.h"

typedef struct hd_entry {
    uint64_t     ticket, upto;
    uint8_t     *rid;            /* into block */
    size_t       rid_len;
    const char **notify;         /* into block */
    size_t       nnotify;
    void        *block;          /* owned */
} hd_entry_t;

struct bk_held {
    hd_entry_t *entries;
    size_t      head, n, cap;    /* the queue is entries[head..n) */
};

bk_held_t *bk_held_new(void)
{
    return calloc(1, sizeof(bk_held_t));
}

void bk_held_destroy(bk_held_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bk_held_t *self = *self_p;
    for (size_t i = self->head; i < self->n; i++)
        free(self->entries[i].block);
    free(self->entries);
    free(self);
    *self_p = NULL;
}

/* Room for one more entry at the end: 0 or LD_ENOMEM. */
static int hd_reserve(bk_held_t *self)
{
    if (self->head > 0 && self->head == self->n)
        self->head = self->n = 0;
    if (self->n < self->cap)
        return 0;
    if (self->head > 0) {        /* slide the queue down before growing it */
        memmove(self->entries, self->entries + self->head,
                (self->n - self->head) * sizeof *self->entries);
        self->n -= self->head;
        self->head = 0;
        return 0;
    }
    size_t cap = self->cap ? self->cap * 2 : 16;
    hd_entry_t *grown = realloc(self->entries, cap * sizeof *grown);
    if (!grown)
        return LD_ENOMEM;
    self->entries = grown;
    self->cap = cap;
    return 0;
}

int bk_held_add(bk_held_t *self, uint64_t ticket, const uint8_t *rid, size_t rid_len,
                uint64_t upto, const char *const *notify, size_t nnotify)
{
    if (hd_reserve(self) != 0)
        return LD_ENOMEM;
    size_t names = 0;
    for (size_t i = 0; i < nnotify; i++)
        names += strlen(notify[i]) + 1;
    /* the pointers first, for their alignment; then the names, then the routing id */
    size_t size = nnotify * sizeof(char *) + names + rid_len;
    char *block = malloc(size ? size : 1);
    if (!block)
        return LD_ENOMEM;
    hd_entry_t *e = &self->entries[self->n];
    e->ticket = ticket;
    e->upto = upto;
    e->block = block;
    e->notify = (const char **)(void *)block;
    e->nnotify = nnotify;
    char *at = block + nnotify * sizeof(char *);
    for (size_t i = 0; i < nnotify; i++) {
        size_t len = strlen(notify[i]) + 1;
        memcpy(at, notify[i], len);
        e->notify[i] = at;
        at += len;
    }
    e->rid = (uint8_t *)at;
    e->rid_len = rid_len;
    if (rid_len > 0)
        memcpy(e->rid, rid, rid_len);
    self->n++;
    return 0;
}

size_t bk_held_release(bk_held_t *self, uint64_t durable, bk_held_fn fn, void *ctx)
{
    size_t released = 0;
    while (self->head < self->n && self->entries[self->head].ticket <= durable) {
        hd_entry_t e = self->entries[self->head++];
        fn(ctx, e.rid, e.rid_len, e.upto, e.notify, e.nnotify);
        free(e.block);
        released++;
    }
    return released;
}

size_t bk_held_count(const bk_held_t *self)
{
    return self->n - self->head;
}
