/* Unit tests: bus/kafka.c, the producer side without a broker (the bootstrap address refuses
 * connections on loopback): batches wait for the broker and are never reported durable,
 * the in-flight budget turns into -EAGAIN (backpressure), a fatal producer error fails what
 * the producer held (agents resend) and a new producer takes over, and shutdown reports
 * every batch still waiting as never durable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "bus/bus.h"
#include "bus/kafka_internal.h"

static atomic_int durable_ok, durable_failed, wakeups;

static void on_durable(bus_batch *b, int status, void *ctx)
{
    (void)b;
    (void)ctx;
    if (status == 0) atomic_fetch_add(&durable_ok, 1);
    else atomic_fetch_add(&durable_failed, 1);
}

static void on_wakeup(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&wakeups, 1);
}

static bus_batch *make_batch(uint64_t seq)
{
    bus_batch *b = bus_batch_create(4096);
    b->tenant = arena_strndup(&b->arena, "acme", 4);
    b->agent_id = arena_strndup(&b->arena, "ws-1", 4);
    b->tenant_hash = event_tenant_hash(b->tenant);
    b->agent_hash = event_agent_hash(b->tenant, b->agent_id);
    b->seq = seq;
    b->received_us = 1;
    b->on_durable = on_durable;
    return b;
}

static bus *make_bus(void)
{
    bus_kafka_options opt = {
        .bootstrap = "127.0.0.1:9", /* nothing listens: the broker is "down" */
        .topic = "unit.events",
        .group_prefix = "unit-",
        .compression = "lz4",
        .partitions = 0, /* do not try to create the topic */
        .max_inflight_batches = 3,
        .max_inflight_bytes = 1 << 30,
        .max_batch_events = 100,
        .max_batch_bytes = 1 << 20,
        .drain_timeout_ms = 200,
    };
    bus *b = NULL;
    assert_int_equal(bus_kafka_create(&opt, &b), 0);
    assert_int_equal(bus_on_wakeup(b, on_wakeup, NULL), 0);
    atomic_store(&durable_ok, 0);
    atomic_store(&durable_failed, 0);
    atomic_store(&wakeups, 0);
    return b;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_broker_down_is_backpressure(void **state)
{
    (void)state;
    bus *b = make_bus();
    bus_batch *batches[4];
    for (uint64_t i = 0; i < 4; i++) batches[i] = make_batch(i + 1);
    for (int i = 0; i < 3; i++) assert_int_equal(bus_publish(b, batches[i]), 0);
    /* the budget (3 batches) is used up by batches the broker never acknowledged */
    assert_int_equal(bus_publish(b, batches[3]), -EAGAIN);
    assert_int_equal(bus_publish(b, batches[3]), -EAGAIN); /* the encoding is kept, not redone */
    sleep_ms(300);
    assert_int_equal(atomic_load(&durable_ok), 0);
    assert_int_equal(atomic_load(&durable_failed), 0);
    bus_stats st;
    bus_get_stats(b, &st);
    assert_int_equal(st.published, 3);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.inflight_batches, 3);
    /* shutdown: never durable, reported as such (ingest makes the agent resend) */
    bus_shutdown(b);
    assert_int_equal(bus_publish(b, batches[3]), -ESHUTDOWN);
    bus_batch_destroy(batches[3]);
    bus_destroy(b);
    assert_int_equal(atomic_load(&durable_ok), 0);
    assert_int_equal(atomic_load(&durable_failed), 3);
}

static void test_fatal_error_replaces_the_producer(void **state)
{
    (void)state;
    bus *b = make_bus();
    assert_int_equal(bus_publish(b, make_batch(1)), 0);
    assert_int_equal(bus_publish(b, make_batch(2)), 0);
    assert_int_equal(kafka_test_fatal_error(b), 0);
    /* what the fatal producer held is failed, and publishing resumes on a new producer */
    int64_t waited = 0;
    while ((atomic_load(&durable_failed) < 2 || atomic_load(&kafka_of(b)->producer_restarts) < 1) && waited < 15000) {
        sleep_ms(20);
        waited += 20;
    }
    assert_int_equal(atomic_load(&durable_failed), 2);
    assert_int_equal(atomic_load(&kafka_of(b)->producer_restarts), 1);
    assert_true(atomic_load(&wakeups) >= 1);
    bus_batch *again = make_batch(1);
    assert_int_equal(bus_publish(b, again), 0);
    bus_shutdown(b);
    bus_destroy(b);
    assert_int_equal(atomic_load(&durable_failed), 3);
    assert_int_equal(atomic_load(&durable_ok), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_down_is_backpressure),
        cmocka_unit_test(test_fatal_error_replaces_the_producer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
