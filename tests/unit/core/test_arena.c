/* Unit tests: core/arena.c — alignment, big blocks, grow in place, and reset keeping
 * retain_bytes of chunks so a recycled arena allocates nothing in steady state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/arena.h"

static void test_alignment_and_contents(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 1024);
    char *prev = NULL;
    for (int i = 1; i < 200; i++) {
        char *p = arena_alloc(&a, (size_t)i);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, i, (size_t)i);
        if (prev) assert_int_equal((unsigned char)prev[0], (unsigned char)(i - 1));
        prev = p;
    }
    char *s = arena_strndup(&a, "hello", 3);
    assert_string_equal(s, "hel");
    arena_fini(&a);
}

static void test_big_blocks_keep_current_chunk(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 4096);
    char *small = arena_alloc(&a, 100);
    char *big = arena_alloc(&a, 100000);
    memset(big, 1, 100000);
    char *small2 = arena_alloc(&a, 100);
    assert_ptr_equal(small2, small + 112); /* same chunk continues after the big block */
    assert_true(a.bytes_reserved >= 100000 + 4096);
    arena_reset(&a);
    assert_int_equal(a.bytes_reserved, 4096); /* big block gone, one chunk kept */
    arena_fini(&a);
}

static void test_grow_in_place_and_shrink(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 4096);
    char *p = arena_alloc(&a, 64);
    memcpy(p, "abc", 3);
    char *q = arena_grow(&a, p, 64, 512);
    assert_ptr_equal(p, q);
    char *r = arena_grow(&a, q, 512, 32); /* shrink gives memory back */
    assert_ptr_equal(q, r);
    char *next = arena_alloc(&a, 16);
    assert_ptr_equal(next, p + 32);
    char *moved = arena_grow(&a, r, 32, 3000); /* not the last allocation: copied */
    assert_memory_equal(moved, "abc", 3);
    arena_fini(&a);
}

static void test_trim(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 4096);
    char *p = arena_alloc(&a, 1000);
    arena_trim(&a, p, 1000, 40); /* the most recent: the tail comes back, rounded to 16 */
    assert_ptr_equal(arena_alloc(&a, 8), p + 48);
    char *q = arena_alloc(&a, 100);
    arena_trim(&a, p, 1000, 0); /* not the most recent: nothing */
    assert_ptr_equal(arena_alloc(&a, 8), q + 112);
    char *big = arena_alloc(&a, 3000); /* a block of its own */
    char *after = arena_alloc(&a, 16);
    arena_trim(&a, big, 3000, 10);
    assert_ptr_equal(arena_alloc(&a, 16), after + 16);
    char *r = arena_alloc(&a, 64);
    arena_trim(&a, r, 64, 0); /* everything back */
    assert_ptr_equal(arena_alloc(&a, 64), r);
    arena_fini(&a);
}

static void test_reset_retains_and_reuses_chunks(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 4096);
    arena_set_retain(&a, 4 * 4096);
    for (int i = 0; i < 10; i++) arena_alloc(&a, 2000); /* spans several chunks */
    size_t grown = a.bytes_reserved;
    assert_true(grown >= 5 * 4096);
    arena_reset(&a);
    assert_int_equal(a.bytes_reserved, 4 * 4096);
    /* the same work again allocates only what exceeds the retained chunks */
    for (int i = 0; i < 6; i++) arena_alloc(&a, 2000);
    assert_int_equal(a.bytes_reserved, 4 * 4096);
    arena_reset(&a);
    arena_set_retain(&a, 0); /* at least one chunk is always kept */
    arena_reset(&a);
    assert_int_equal(a.bytes_reserved, 4096);
    arena_fini(&a);
    assert_int_equal(a.bytes_reserved, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_and_contents),
        cmocka_unit_test(test_big_blocks_keep_current_chunk),
        cmocka_unit_test(test_grow_in_place_and_shrink),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_reset_retains_and_reuses_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
