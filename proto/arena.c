/* arena.c: memory freed all at once (see arena.h). */
#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_MIN 4096          /* bytes of the smallest block (a zeroed arena's first) */

struct ld_arena_block {
    struct ld_arena_block *next;       /* the block made before this one */
    size_t                 size, used; /* bytes of data */
    max_align_t            data[];
};

void ld_arena_init(ld_arena_t *a, size_t first)
{
    a->head = NULL;
    a->next_size = a->first = first;
}

/* size bytes at a multiple of align (a power of two, at most max_align_t's) in the
 * newest block, or in a new one. */
static void *carve(ld_arena_t *a, size_t size, size_t align)
{
    if (size > SIZE_MAX / 4)
        return NULL;
    ld_arena_block_t *b = a->head;
    size_t at = b != NULL ? (b->used + align - 1) & ~(align - 1) : 0;
    if (b == NULL || at > b->size || b->size - at < size) {
        size_t want = a->next_size > size ? a->next_size : size;
        if (want < BLOCK_MIN)
            want = BLOCK_MIN;
        if (want > SIZE_MAX / 2)         /* an init's `first` beyond any block */
            return NULL;
        ld_arena_block_t *nb = malloc(sizeof *nb + want);
        if (nb == NULL)
            return NULL;
        nb->next = b;
        nb->size = want;
        a->head = b = nb;
        at = 0;
        if (want <= SIZE_MAX / 4)
            a->next_size = want * 2;
    }
    b->used = at + size;
    return (char *)b->data + at;
}

void *ld_arena_alloc(ld_arena_t *a, size_t size)
{
    return carve(a, size, alignof(max_align_t));
}

char *ld_arena_text(ld_arena_t *a, const char *text, size_t len)
{
    char *copy = len < SIZE_MAX ? carve(a, len + 1, 1) : NULL;
    if (copy != NULL) {
        memcpy(copy, text, len);
        copy[len] = '\0';
    }
    return copy;
}

void ld_arena_reset(ld_arena_t *a)
{
    ld_arena_block_t *keep = a->head;
    if (keep == NULL)
        return;
    while (keep->next != NULL) {
        ld_arena_block_t *older = keep->next;
        keep->next = older->next;
        free(older);
    }
    keep->used = 0;
}

void ld_arena_release(ld_arena_t *a)
{
    while (a->head != NULL) {
        ld_arena_block_t *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    a->next_size = a->first;
}
