/* test_arena.c: the arena (arena.h): pieces aligned and apart, texts packed with their
 * NUL, every piece intact across many blocks, a reset keeping one block, and release
 * freeing them all (ASan's leak check runs over every test of the sanitizer build). */
#include <criterion/criterion.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"

TestSuite(arena);

Test(arena, pieces_are_aligned_for_any_type_and_never_overlap)
{
    ld_arena_t a;
    ld_arena_init(&a, 256);
    unsigned char *piece[300];
    size_t size[300];
    for (size_t i = 0; i < 300; i++) {
        size[i] = 1 + i % 37;
        piece[i] = ld_arena_alloc(&a, size[i]);
        cr_assert_not_null(piece[i]);
        cr_assert_eq((uintptr_t) piece[i] % alignof(max_align_t), 0, "piece %zu misaligned", i);
        memset(piece[i], (int) (i & 0xff), size[i]);
    }
    /* written in turn: a piece that overlapped a later one would show its bytes */
    for (size_t i = 0; i < 300; i++)
        for (size_t k = 0; k < size[i]; k++)
            cr_assert_eq(piece[i][k], (unsigned char) (i & 0xff), "piece %zu byte %zu", i, k);
    ld_arena_release(&a);
}

Test(arena, texts_keep_their_bytes_and_nul_across_many_blocks)
{
    ld_arena_t a;
    ld_arena_init(&a, 64);            /* small, so that the texts span many blocks */
    enum { N = 5000 };
    static char *copy[N];
    char buf[96];
    for (size_t i = 0; i < N; i++) {
        int len = snprintf(buf, sizeof buf, "第%zu条 流动党员%.*s", i, (int) (i % 40),
                           "........................................");
        copy[i] = ld_arena_text(&a, buf, (size_t) len);
        cr_assert_not_null(copy[i]);
    }
    for (size_t i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "第%zu条 流动党员%.*s", i, (int) (i % 40),
                 "........................................");
        cr_assert_str_eq(copy[i], buf);
    }
    /* texts are packed byte to byte: the next one starts right after a NUL */
    char *x = ld_arena_text(&a, "甲", 3), *y = ld_arena_text(&a, "乙", 3);
    cr_assert_eq(y, x + 4);
    ld_arena_release(&a);
}

Test(arena, a_text_is_copied_up_to_len_without_needing_a_nul)
{
    ld_arena_t a;
    ld_arena_init(&a, 128);
    const char src[] = { 'a', 'b', 'c', 'd' };      /* no NUL */
    char *t = ld_arena_text(&a, src, 3);
    cr_assert_str_eq(t, "abc");
    cr_assert_str_eq(ld_arena_text(&a, "", 0), "");
    ld_arena_release(&a);
}

Test(arena, a_piece_larger_than_the_next_block_gets_one_of_its_own)
{
    ld_arena_t a;
    ld_arena_init(&a, 1024);
    char *small = ld_arena_text(&a, "小", 3);
    unsigned char *big = ld_arena_alloc(&a, 1u << 20);
    cr_assert_not_null(big);
    memset(big, 0x5a, 1u << 20);                    /* all of it is ours (ASan checks) */
    cr_assert_str_eq(small, "小");
    char *after = ld_arena_text(&a, "后", 3);
    cr_assert_str_eq(after, "后");
    cr_assert((unsigned char *) after < big || (unsigned char *) after >= big + (1u << 20),
              "a later piece landed inside the big one");
    for (size_t i = 0; i < (1u << 20); i++)
        cr_assert_eq(big[i], 0x5a, "byte %zu of the big piece changed", i);
    ld_arena_release(&a);
}

Test(arena, a_zeroed_arena_is_empty_and_release_leaves_it_usable)
{
    ld_arena_t a;
    memset(&a, 0, sizeof a);
    ld_arena_release(&a);                           /* nothing to free */
    char *t = ld_arena_text(&a, "竹园镇", strlen("竹园镇"));
    cr_assert_str_eq(t, "竹园镇");
    ld_arena_release(&a);
    cr_assert_null(a.head);
    ld_arena_release(&a);                           /* twice is harmless */
    cr_assert_str_eq(ld_arena_text(&a, "东莞", strlen("东莞")), "东莞");
    ld_arena_release(&a);
    cr_assert_null(a.head);
}

Test(arena, an_impossible_size_is_refused_and_changes_nothing)
{
    ld_arena_t a;
    ld_arena_init(&a, 128);
    char *before = ld_arena_text(&a, "前", 3);
    cr_assert_null(ld_arena_alloc(&a, SIZE_MAX));
    cr_assert_null(ld_arena_alloc(&a, SIZE_MAX / 2));
    cr_assert_null(ld_arena_text(&a, "x", SIZE_MAX));
    char *next = ld_arena_text(&a, "后", 3);
    cr_assert_eq(next, before + 4, "a refused request took no room");
    ld_arena_release(&a);
}

Test(arena, a_reset_keeps_the_newest_block_alone_and_carves_it_again_from_its_start)
{
    ld_arena_t a;
    ld_arena_init(&a, 256);
    for (int i = 0; i < 200; i++)                   /* several blocks: 256, 512, 1024, ... */
        cr_assert_not_null(ld_arena_text(&a, "党员活动记录", strlen("党员活动记录")));
    ld_arena_block_t *newest = a.head;
    ld_arena_reset(&a);       /* the older blocks are freed: LeakSanitizer would see them */
    cr_assert_eq(a.head, newest, "the newest block is kept");
    /* the next pieces come from the kept block's start, and are whole */
    char *first = ld_arena_text(&a, "重置", strlen("重置"));
    char *second = ld_arena_text(&a, "之后", strlen("之后"));
    cr_assert_eq(second, first + strlen("重置") + 1);
    cr_assert_str_eq(first, "重置");
    cr_assert_str_eq(second, "之后");
    void *aligned = ld_arena_alloc(&a, 24);
    cr_assert_eq((uintptr_t)aligned % alignof(max_align_t), 0);
    cr_assert_eq(a.head, newest, "no new block for what fits");
    ld_arena_reset(&a);
    cr_assert_eq((char *)ld_arena_alloc(&a, 8), first, "carved again from the start");
    ld_arena_release(&a);
    ld_arena_reset(&a);                             /* an empty arena: nothing to keep */
    cr_assert_null(a.head);
}
