/* Unit tests: bus/embedded.c — fan-out to groups, per-agent partitioning, durability on
 * the durable group's completion, backpressure (queue and memory), shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "bus/bus.h"

static int durable_calls, durable_status, wakeups;
static uint64_t durable_seq_sum;

static void on_durable(bus_batch *b, int status, void *ctx)
{
    (void)ctx;
    durable_calls++;
    durable_status = status;
    durable_seq_sum += b->seq;
}

static void on_wakeup(void *ctx)
{
    (void)ctx;
    wakeups++;
}

static bus_batch *make_batch(uint64_t agent, uint64_t seq)
{
    bus_batch *b = bus_batch_create(1024);
    b->agent_hash = agent;
    b->seq = seq;
    b->on_durable = on_durable;
    return b;
}

static bus *make_bus(uint32_t queue, uint64_t budget)
{
    bus_options opt = {.durable_group = "store", .queue_batches = queue, .max_inflight_bytes = budget};
    bus *b;
    assert_int_equal(bus_embedded_create(&opt, &b), 0);
    assert_int_equal(bus_add_group(b, "store", 2), 0);
    assert_int_equal(bus_add_group(b, "detect", 1), 0);
    assert_int_equal(bus_on_wakeup(b, on_wakeup, NULL), 0);
    durable_calls = wakeups = 0;
    durable_seq_sum = 0;
    return b;
}

static void test_fanout_partition_and_durability(void **state)
{
    (void)state;
    bus *b = make_bus(16, 1 << 30);
    bus_consumer *s0, *s1, *d0;
    assert_int_equal(bus_consumer_open(b, "store", 0, &s0), 0);
    assert_int_equal(bus_consumer_open(b, "store", 1, &s1), 0);
    assert_int_equal(bus_consumer_open(b, "detect", 0, &d0), 0);
    assert_int_equal(bus_consumer_open(b, "store", 0, &s0), -EBUSY);
    assert_int_equal(bus_consumer_open(b, "nope", 0, &s0), -ENOENT);
    for (uint64_t seq = 1; seq <= 3; seq++) assert_int_equal(bus_publish(b, make_batch(4, seq)), 0); /* 4 % 2 = 0 */
    assert_int_equal(bus_publish(b, make_batch(5, 1)), 0);                                           /* partition 1 */
    bus_batch *got[8];
    assert_int_equal(bus_poll(s0, got, 8, 0), 3);
    for (int i = 0; i < 3; i++) assert_true(got[i]->seq == (uint64_t)i + 1); /* per-agent order kept */
    /* detect completes first: not durable yet */
    bus_batch *dgot[8];
    assert_int_equal(bus_poll(d0, dgot, 8, 0), 4);
    bus_done(d0, dgot, 4);
    assert_int_equal(durable_calls, 0);
    bus_done(s0, got, 3);
    assert_int_equal(durable_calls, 3);
    assert_int_equal(durable_status, 0);
    assert_int_equal(bus_poll(s1, got, 8, 10), 1);
    bus_done(s1, got, 1);
    assert_int_equal(durable_calls, 4);
    bus_stats st;
    bus_get_stats(b, &st);
    assert_true(st.inflight_batches == 0 && st.inflight_bytes == 0 && st.published == 4);
    bus_consumer_close(s0);
    bus_consumer_close(s1);
    bus_consumer_close(d0);
    bus_shutdown(b);
    bus_destroy(b);
}

static void test_backpressure_queue_full(void **state)
{
    (void)state;
    bus *b = make_bus(2, 1 << 30);
    bus_consumer *s0, *d0;
    assert_int_equal(bus_consumer_open(b, "store", 0, &s0), 0);
    assert_int_equal(bus_consumer_open(b, "detect", 0, &d0), 0);
    assert_int_equal(bus_publish(b, make_batch(2, 1)), 0);
    assert_int_equal(bus_publish(b, make_batch(2, 2)), 0);
    bus_batch *refused = make_batch(2, 3);
    assert_int_equal(bus_publish(b, refused), -EAGAIN); /* caller keeps it */
    bus_batch *got[4], *dgot[4];
    assert_int_equal(bus_poll(s0, got, 1, 0), 1);
    assert_int_equal(wakeups, 1); /* room appeared after a refusal */
    /* a slow group backpressures everyone: detect's queue is still full */
    assert_int_equal(bus_publish(b, refused), -EAGAIN);
    assert_int_equal(bus_poll(d0, dgot, 1, 0), 1);
    assert_int_equal(wakeups, 2);
    assert_int_equal(bus_publish(b, refused), 0);
    bus_done(s0, got, 1);
    bus_done(d0, dgot, 1);
    bus_consumer_close(s0);
    bus_consumer_close(d0);
    bus_shutdown(b);
    bus_destroy(b); /* unconsumed batches are reported as never durable */
    assert_int_equal(durable_status, -ESHUTDOWN);
}

static void test_backpressure_memory_budget(void **state)
{
    (void)state;
    bus *b = make_bus(64, 1); /* every batch is over budget */
    bus_consumer *s0, *s1, *d0;
    assert_int_equal(bus_consumer_open(b, "store", 0, &s0), 0);
    assert_int_equal(bus_consumer_open(b, "store", 1, &s1), 0);
    assert_int_equal(bus_consumer_open(b, "detect", 0, &d0), 0);
    assert_int_equal(bus_publish(b, make_batch(2, 1)), 0); /* admitted: nothing in flight */
    bus_batch *second = make_batch(2, 2);
    assert_int_equal(bus_publish(b, second), -EAGAIN);
    bus_batch *got[4];
    assert_int_equal(bus_poll(s0, got, 4, 0), 1);
    bus_done(s0, got, 1);
    assert_int_equal(bus_publish(b, second), -EAGAIN); /* woken by the poll; memory still held */
    int before = wakeups;
    assert_int_equal(bus_poll(d0, got, 4, 0), 1);
    bus_done(d0, got, 1); /* last reference: memory returned, publisher woken */
    assert_true(wakeups > before);
    assert_int_equal(bus_publish(b, second), 0);
    bus_shutdown(b);
    assert_int_equal(bus_poll(s0, got, 4, 100), 1);
    bus_done(s0, got, 1);
    assert_int_equal(bus_poll(s0, got, 4, 100), -ESHUTDOWN);
    assert_int_equal(bus_poll(d0, got, 4, 100), 1);
    bus_done(d0, got, 1);
    bus_batch *late = make_batch(1, 1);
    assert_int_equal(bus_publish(b, late), -ESHUTDOWN);
    bus_batch_destroy(late);
    bus_consumer_close(s0);
    bus_consumer_close(s1);
    bus_consumer_close(d0);
    bus_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fanout_partition_and_durability),
        cmocka_unit_test(test_backpressure_queue_full),
        cmocka_unit_test(test_backpressure_memory_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
