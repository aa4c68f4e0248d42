/* tests/unit/search/test_sequence.c — the sequence machine on the correlation engine
 * (search/sequence.c): completions carry the fed events in stage order, `waiting` names the
 * stages an event could take part as, an event out of time order is refused (-EDOM), and the
 * bounds (keys, waiting matches per key and in all) fail the search instead of evicting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "search/internal.h"

#define SEC 1000000LL
#define T0 1767225600000000LL /* 2026-01-01 */

typedef struct done {
    int count;
    seq_event last[SEARCH_MAX_STAGES];
    uint32_t n;
    char key[64];
} done;

static int on_done(void *ctx, const char *key, size_t key_len, const seq_event *events, uint32_t n)
{
    done *d = ctx;
    d->count++;
    memcpy(d->last, events, n * sizeof *events);
    d->n = n;
    snprintf(d->key, sizeof d->key, "%.*s", (int)key_len, key);
    return 0;
}

static seq_event ev_at(int64_t ts, uint64_t seq)
{
    seq_event e = {.ref = {.ts_us = ts, .agent_hash = 0xabcdef, .seq = seq, .index = 3}, .ts_us = ts};
    return e;
}

static void test_completion_and_waiting(void **state)
{
    (void)state;
    done d = {0};
    seq_machine *m = seq_machine_create(3, 60 * SEC, 100, on_done, &d);
    seq_event a = ev_at(T0, 1), b = ev_at(T0 + 10 * SEC, 2), c = ev_at(T0 + 20 * SEC, 3);
    assert_int_equal(seq_machine_waiting(m, "h1", 2, T0), 0);
    assert_int_equal(seq_machine_feed(m, 1u << 0, false, "h1", 2, &a), 0);
    assert_int_equal(seq_machine_waiting(m, "h1", 2, T0 + 5 * SEC), 1u << 1);
    assert_int_equal(seq_machine_feed(m, 1u << 1, false, "h1", 2, &b), 0);
    assert_int_equal(seq_machine_waiting(m, "h1", 2, T0 + 15 * SEC), (1u << 1) | (1u << 2));
    assert_int_equal(seq_machine_waiting(m, "h1", 2, T0 + 61 * SEC), 0); /* a left the window */
    assert_int_equal(seq_machine_feed(m, 1u << 2, false, "h1", 2, &c), 0);
    assert_int_equal(d.count, 1);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.key, "h1");
    assert_true(d.last[0].ref.seq == 1 && d.last[1].ref.seq == 2 && d.last[2].ref.seq == 3);
    assert_true(d.last[2].ref.ts_us == c.ts_us && d.last[2].ref.agent_hash == 0xabcdef && d.last[2].ref.index == 3);
    /* out of time order: refused, not dropped silently */
    seq_event old = ev_at(T0 + 5 * SEC, 4);
    assert_int_equal(seq_machine_feed(m, 1u << 0, false, "h1", 2, &old), -EDOM);
    /* a reset starts a new clock */
    seq_machine_reset(m);
    assert_int_equal(seq_machine_feed(m, 1u << 0, false, "h2", 2, &old), 0);
    /* until forgets the key */
    seq_event u = ev_at(T0 + 6 * SEC, 5), late_b = ev_at(T0 + 7 * SEC, 6), late_c = ev_at(T0 + 8 * SEC, 7);
    assert_int_equal(seq_machine_feed(m, 0, true, "h2", 2, &u), 0);
    assert_int_equal(seq_machine_feed(m, 1u << 1, false, "h2", 2, &late_b), 0);
    assert_int_equal(seq_machine_feed(m, 1u << 2, false, "h2", 2, &late_c), 0);
    assert_int_equal(d.count, 1);
    seq_machine_destroy(m);
}

static void test_bounds_fail_instead_of_evicting(void **state)
{
    (void)state;
    done d = {0};
    /* keys */
    seq_machine *m = seq_machine_create(2, 0, 3, on_done, &d);
    char key[16];
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++) {
        seq_event e = ev_at(T0 + i, (uint64_t)i);
        snprintf(key, sizeof key, "k%d", i);
        rc = seq_machine_feed(m, 1u << 0, false, key, strlen(key), &e);
    }
    assert_int_equal(rc, -E2BIG);
    seq_machine_destroy(m);
    /* waiting matches of one key (no maxspan: every first-stage match waits) */
    m = seq_machine_create(2, 0, 100, on_done, &d);
    rc = 0;
    uint32_t fed = 0;
    for (; fed <= SEQ_EVENTS_PER_KEY_MAX && rc == 0; fed++) {
        seq_event e = ev_at(T0 + fed, fed);
        rc = seq_machine_feed(m, 1u << 0, false, "k", 1, &e);
    }
    assert_int_equal(rc, -E2BIG);
    assert_int_equal(fed, SEQ_EVENTS_PER_KEY_MAX + 1);
    seq_machine_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_and_waiting),
        cmocka_unit_test(test_bounds_fail_instead_of_evicting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
