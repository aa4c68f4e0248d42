/* tests/unit/api/test_fanout.c — the fan-out's pure parts (api/fanout.c): the merged
 * cursor round-trips every shard's position and refuses anything else, and the merge key
 * of an event or a sequence row orders rows as the store does (time, agent, seq, index). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "core/arena.h"
#include "core/event.h"

static void free_shards(fanout_shard *st, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        free(st[i].cursor);
        st[i].cursor = NULL;
    }
}

static void test_cursor_round_trip(void **state)
{
    (void)state;
    char c2[131];
    memset(c2, 'a', sizeof c2 - 1);
    c2[0] = 'c';
    c2[1] = '2';
    c2[sizeof c2 - 1] = '\0';
    fanout_shard in[3] = {{.cursor = NULL, .skip = 0}, {.cursor = c2, .skip = 17}, {.done = true}};
    fanout_cursor c = {.hash = 0x0123456789abcdefULL, .from_us = -5, .to_us = 4102444800000000LL, .mode = 's',
                       .n = UINT64_MAX};
    buf b;
    buf_init(&b);
    fanout_cursor_write(&b, &c, in, 3);
    buf_putc(&b, '\0');
    fanout_cursor out = {0};
    fanout_shard st[3] = {0};
    assert_int_equal(fanout_cursor_read(b.data, &out, st, 3), 0);
    assert_true(out.hash == c.hash && out.from_us == c.from_us && out.to_us == c.to_us && out.mode == 's' &&
                out.n == UINT64_MAX);
    assert_null(st[0].cursor);
    assert_false(st[0].done);
    assert_int_equal(st[0].skip, 0);
    assert_string_equal(st[1].cursor, c2);
    assert_int_equal(st[1].skip, 17);
    assert_true(st[2].done);
    free_shards(st, 3);
    /* the same text read for another number of shards is refused */
    fanout_shard st2[4] = {0};
    assert_int_equal(fanout_cursor_read(b.data, &out, st2, 2), -EINVAL);
    free_shards(st2, 4);
    assert_int_equal(fanout_cursor_read(b.data, &out, st2, 4), -EINVAL);
    free_shards(st2, 4);
    /* offset mode */
    buf_clear(&b);
    fanout_cursor o = {.hash = 1, .from_us = 0, .to_us = 10, .mode = 'o', .n = 42};
    fanout_cursor_write(&b, &o, NULL, 0);
    buf_putc(&b, '\0');
    assert_int_equal(fanout_cursor_read(b.data, &out, st, 3), 0);
    assert_true(out.mode == 'o' && out.n == 42 && out.to_us == 10);
    buf_fini(&b);
}

static void test_cursor_refuses_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "c2abcdef",
        "m1",
        "m1:",
        "m1:0123:0:10:s:5",                                 /* short hash */
        "m1:0123456789abcdef:0:10:q:5",                     /* unknown mode */
        "m1:0123456789abcdef:0:10:o:5:junk",                /* offset mode with shards */
        "m1:0123456789abcdef:0:10:s:5:0,-",                 /* one shard of two */
        "m1:0123456789abcdef:0:10:s:5:0,-:0,-:0,-",         /* three of two */
        "m1:0123456789abcdef:0:10:s:5:0,-:0,C2AB",          /* not a shard cursor */
        "m1:0123456789abcdef:0:10:s:5:0,-:x,x",             /* skip not a number */
        "m1:0123456789abcdef:0:10:s:5:0,-:0,",              /* empty state */
        "m1:0123456789abcdef:x:10:s:5:0,-:0,-",             /* bad time */
        "m1:0123456789abcdef:0:10:s:99999999999999999999999:0,-:0,-", /* overflow */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fanout_cursor c;
        fanout_shard st[2] = {0};
        int rc = fanout_cursor_read(bad[i], &c, st, 2);
        free_shards(st, 2);
        if (rc != -EINVAL) fail_msg("accepted '%s'", bad[i]);
    }
    fanout_cursor c;
    fanout_shard st[2] = {0};
    assert_int_equal(fanout_cursor_read("m1:0123456789abcdef:0:10:s:5:0,-:3,c2ab", &c, st, 2), 0);
    assert_string_equal(st[1].cursor, "c2ab");
    free_shards(st, 2);
}

static void test_row_keys_order(void **state)
{
    (void)state;
    char id1[EVENT_ID_HEX_CHARS + 1], id2[EVENT_ID_HEX_CHARS + 1], id3[EVENT_ID_HEX_CHARS + 1];
    event_id_format(1000, 7, 1, 2, id1);
    event_id_format(1000, 7, 1, 3, id2);
    event_id_format(999, 9, 9, 9, id3);
    char text[1024];
    snprintf(text, sizeof text,
             "[{\"mamori\":{\"event_id\":\"%s\"}},{\"mamori\":{\"event_id\":\"%s\"}},{\"mamori\":{\"event_id\":\"%s\"}},"
             "{\"by\":{},\"events\":[{\"mamori\":{\"event_id\":\"%s\"}},{\"mamori\":{\"event_id\":\"%s\"}}]},"
             "{\"mamori\":{}},{\"by\":{},\"events\":[]}]",
             id1, id2, id3, id3, id2);
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 4096);
    json_value v;
    json_error err;
    assert_int_equal(json_parse(p, &a, text, strlen(text), &v, &err), 0);
    fanout_key k1, k2, k3, ks;
    assert_true(fanout_event_key(&v.items[0], false, &k1));
    assert_true(fanout_event_key(&v.items[1], false, &k2));
    assert_true(fanout_event_key(&v.items[2], false, &k3));
    assert_true(fanout_event_key(&v.items[3], true, &ks)); /* a sequence: its last event */
    assert_true(k1.ts == 1000 && k1.agent == 7 && k1.seq == 1 && k1.index == 2);
    assert_true(fanout_key_cmp(&k1, &k2) < 0 && fanout_key_cmp(&k2, &k1) > 0);
    assert_true(fanout_key_cmp(&k3, &k1) < 0); /* time first */
    assert_int_equal(fanout_key_cmp(&ks, &k2), 0);
    assert_false(fanout_event_key(&v.items[4], false, &k1)); /* no event_id */
    assert_false(fanout_event_key(&v.items[5], true, &k1));  /* an empty sequence */
    arena_fini(&a);
    json_parser_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_round_trip),
        cmocka_unit_test(test_cursor_refuses_garbage),
        cmocka_unit_test(test_row_keys_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
