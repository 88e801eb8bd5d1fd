/* arena.h: memory carved from a few large blocks and freed all at once.  For the many
 * small pieces that live and die together (a batch's unpacked messages and texts, a
 * table's cells, a report's findings): one malloc per block instead of one per piece,
 * and one walk of the blocks to free them instead of a free each.  A piece is never
 * freed alone.
 *
 * Ownership: the arena owns its blocks; every piece it handed out is valid until
 * ld_arena_release.  An ld_arena_t may be moved (copied by value) to hand the blocks
 * over, the old one then not used again. */
#ifndef LD_ARENA_H
#define LD_ARENA_H

#include <stddef.h>

typedef struct ld_arena_block ld_arena_block_t;

typedef struct ld_arena {
    ld_arena_block_t *head;        /* the newest block, NULL when empty */
    size_t            next_size;   /* bytes of the next block; each one doubles it */
    size_t            first;       /* bytes of the first block, again after a release */
} ld_arena_t;

/* An empty arena whose first block will hold `first` bytes (a guess of what it will
 * carry: too small costs a few more blocks, too large memory never touched).  A zeroed
 * ld_arena_t is an empty arena too, its first block 4 KiB. */
void ld_arena_init(ld_arena_t *a, size_t first);

/* `size` bytes aligned for any type, or NULL when out of memory. */
void *ld_arena_alloc(ld_arena_t *a, size_t size);

/* A copy of text[0..len) with a NUL after it (text need not have one), or NULL; not
 * aligned: texts are packed byte to byte. */
char *ld_arena_text(ld_arena_t *a, const char *text, size_t len);

/* Makes every piece handed out so far invalid and keeps the newest (largest) block for
 * the pieces to come, freeing the others: an arena reused for one item after another
 * (a change at a time) settles on one block the size of the largest item.  Safe on an
 * arena zeroed or released. */
void ld_arena_reset(ld_arena_t *a);

/* Frees every block; the arena is empty again, its next block `first` bytes as at
 * init.  Safe on an arena zeroed or already released. */
void ld_arena_release(ld_arena_t *a);

#endif
