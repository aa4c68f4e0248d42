/* Unit tests: the consumer lag of one partition (bus/kafka_internal.h kafka_track_lag) — a
 * partition assigned a moment ago, not fetched yet, is behind by what its end was at the
 * assignment, or unknown; never caught up (the kill -9 alert flake, docs/kafka.md 4.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/kafka_internal.h"

static part_track fresh(void)
{
    part_track t = {.assigned = true, .commit_next = -1, .next_offset = -1, .drain_target = -1, .start_offset = -1,
                    .end_at_assign = -1};
    return t;
}

static void test_not_fetched_yet(void **state)
{
    (void)state;
    part_track t = fresh();
    t.start_offset = 100; /* the group's committed offset */
    /* librdkafka does not know the high watermark before the first fetch (-1) */
    assert_int_equal(kafka_track_lag(&t, -1, -1), -1); /* unknown, not 0 */
    t.end_at_assign = 130;                             /* listed when assigned */
    assert_int_equal(kafka_track_lag(&t, -1, -1), 30);
    /* no committed offset: from the beginning */
    t.start_offset = -1;
    assert_int_equal(kafka_track_lag(&t, -1, -1), 130);
    assert_int_equal(kafka_track_lag(&t, 20, -1), 110);
}

static void test_consuming(void **state)
{
    (void)state;
    part_track t = fresh();
    int64_t offsets[4] = {100, 101, 102, 0};
    bool done[4] = {false, false, false, false};
    t.offsets = offsets;
    t.done = done;
    t.cap = 4;
    t.count = 3; /* handed out 100..102, none done */
    t.next_offset = 103;
    t.end_at_assign = 110;
    assert_int_equal(kafka_track_lag(&t, 0, -1), 10);
    assert_int_equal(kafka_track_lag(&t, 0, 150), 50); /* a fetch told the newer end */
    t.commit_next = 102; /* 100 and 101 done */
    t.head = 2;
    t.count = 1;
    assert_int_equal(kafka_track_lag(&t, 0, 150), 48);
    t.commit_next = 150;
    t.count = 0;
    assert_int_equal(kafka_track_lag(&t, 0, 150), 0);
    /* an end listed at assignment never hides a larger cached one, nor the reverse */
    assert_int_equal(kafka_track_lag(&t, 0, 140), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_fetched_yet),
        cmocka_unit_test(test_consuming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
