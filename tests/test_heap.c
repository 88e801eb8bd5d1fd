/* test_heap.c: the allocator's thresholds (ld_heap_tune) and giving freed memory back
 * (ld_heap_release), read off glibc's own statistics.  Criterion runs each test in a
 * process of its own, so every test starts from glibc's defaults.  Under ASan or
 * valgrind their allocator replaces glibc's, and there is nothing to measure. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "heap.h"
#include "procstat.h"

#define MiB (1024u * 1024u)

static void skip_without_glibc_malloc(void)
{
    const char *absent = hn_glibc_malloc_absent();
    if (absent != NULL)
        cr_skip_test("%s", absent);
}

/* A block of `size` bytes, every page of it touched; aborts the test if none. */
static unsigned char *block(size_t size)
{
    unsigned char *p = malloc(size);
    cr_assert_not_null(p);
    memset(p, 0xa5, size);
    return p;
}

TestSuite(heap);

Test(heap, glibc_alone_maps_a_large_block_of_its_own)
{
    skip_without_glibc_malloc();
    /* The premise of the next test: without tuning, a body-sized block is an mmap. */
    size_t before = mallinfo2().hblks;
    unsigned char *p = block(4 * MiB);
    cr_assert_eq(mallinfo2().hblks, before + 1);
    free(p);
}

Test(heap, tuned_the_largest_body_and_its_copy_come_from_the_heap)
{
    skip_without_glibc_malloc();
    cr_assert(ld_heap_tune());
    size_t before = mallinfo2().hblks;
    size_t arena = mallinfo2().arena;
    unsigned char *body = block(LD_BODY_MAX);
    unsigned char *copy = block(LD_BODY_MAX);
    cr_assert_eq(mallinfo2().hblks, before, "no block was mapped on its own");
    cr_assert_geq(mallinfo2().arena, arena + 2 * (size_t)LD_BODY_MAX);
    free(copy);
    free(body);
}

/* Tunes the allocator, then takes and frees a block of 8 MiB at the top of the heap:
 * the heap's size while the block was held. */
static size_t tuned_then_freed(void)
{
    skip_without_glibc_malloc();
    cr_assert(ld_heap_tune());
    unsigned char *p = block(8 * MiB);
    size_t arena = mallinfo2().arena;
    free(p);
    return arena;
}

Test(heap, tuned_freed_memory_is_kept_for_the_next_batch)
{
    size_t arena = tuned_then_freed();
    cr_assert_eq(mallinfo2().arena, arena, "8 MiB freed at the top is not given back");
    cr_assert_geq(mallinfo2().keepcost, 8 * MiB);

    unsigned char *p = block(8 * MiB);
    cr_assert_eq(mallinfo2().arena, arena, "the next batch reuses it");
    free(p);
}

Test(heap, release_gives_back_what_was_kept)
{
    size_t arena = tuned_then_freed();
    cr_assert(ld_heap_release());
    cr_assert_leq(mallinfo2().arena + 8 * MiB, arena, "arena %zu before, %zu after",
                  arena, mallinfo2().arena);
    cr_assert_not(ld_heap_release(), "nothing is left to give back");
}
