/* server/bus_setup.c — which bus mamorid runs on (bus.type): the embedded one, or Kafka
 * (docs/kafka.md). Both get the groups "store" (one consumer: the store writer) and
 * "detect" (detect.threads consumers). With Kafka the store group is not what makes a batch
 * durable (the broker's ack is), and ingest may only start once the store has everything
 * Kafka holds: the agents' resume points (WELCOME) come from the store's durable seqs. */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "core/log.h"

#define MOD "mamorid"

bool server_bus_is_kafka(const mamori_config *cfg) { return !strcmp(cfg->bus.type, "kafka"); }

int server_bus_create(const mamori_config *cfg, bus **out)
{
    int rc;
    if (server_bus_is_kafka(cfg)) {
        bus_kafka_options ko = {
            .bootstrap = cfg->bus.kafka.bootstrap,
            .topic = cfg->bus.kafka.topic,
            .group_prefix = cfg->bus.kafka.group_prefix,
            .client_id = "mamorid",
            .compression = cfg->bus.kafka.compression,
            .partitions = cfg->bus.kafka.partitions,
            .replication_factor = cfg->bus.kafka.replication_factor,
            .linger_ms = cfg->bus.kafka.linger_ms,
            .max_inflight_batches = cfg->bus.queue_batches,
            .max_inflight_bytes = cfg->bus.max_inflight_bytes,
            .max_batch_events = cfg->ingest.max_batch_events,
            .max_batch_bytes = cfg->ingest.max_batch_bytes,
            .max_past_us = (int64_t)cfg->ingest.max_event_age_days * 86400 * 1000000,
            .max_future_us = (int64_t)cfg->ingest.max_clock_skew_s * 1000000,
            .drain_timeout_ms = cfg->bus.kafka.drain_timeout_ms,
            .instance_id = cfg->bus.kafka.instance_id,
            .store_shard = cfg->bus.kafka.store_shard,
            .store_shards = cfg->bus.kafka.store_shards,
            .alerts_topic = cfg->bus.kafka.alerts_topic,
            .matches_topic = cfg->bus.kafka.matches_topic,
        };
        rc = bus_kafka_create(&ko, out);
    } else {
        bus_options bo = {.durable_group = "store", .queue_batches = cfg->bus.queue_batches,
                          .max_inflight_bytes = cfg->bus.max_inflight_bytes};
        rc = bus_embedded_create(&bo, out);
    }
    if (rc) return rc;
    rc = bus_add_group(*out, "store", 1);
    if (rc == 0) rc = bus_add_group(*out, "detect", cfg->detect.threads);
    if (rc) {
        bus_destroy(*out);
        *out = NULL;
    }
    return rc;
}

int server_bus_catch_up(bus *b, const mamori_config *cfg, const sigset_t *stop_signals)
{
    if (!server_bus_is_kafka(cfg)) return 0;
    int64_t waited_s = 0;
    for (;;) {
        int rc = bus_wait_caught_up(b, "store", 1000);
        if (rc == 0) break;
        if (rc != -ETIMEDOUT) return rc;
        /* SIGINT/SIGTERM while waiting (e.g. the broker is down): stop instead */
        struct timespec zero = {0, 0};
        sigset_t pending;
        if (sigpending(&pending) == 0 && (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM))) {
            int sig = sigtimedwait(stop_signals, NULL, &zero);
            if (sig == SIGINT || sig == SIGTERM) return -EINTR;
        }
        if (++waited_s % 5 == 0)
            LOG_INFO(MOD, "waiting for the store to catch up with Kafka before accepting agents (%llds)",
                     (long long)waited_s);
    }
    if (waited_s) LOG_INFO(MOD, "store caught up with Kafka");
    return 0;
}

typedef struct metrics_ctx {
    void (*detect_fn)(void *ctx, buf *out);
    void *detect_ctx;
    bus *b;
} metrics_ctx;

static metrics_ctx extra_metrics;

static void write_extra_metrics(void *ctx, buf *out)
{
    metrics_ctx *m = ctx;
    if (m->detect_fn) m->detect_fn(m->detect_ctx, out);
    bus_write_metrics(m->b, out);
}

void server_metrics_extra(bus *b, void (*detect_fn)(void *ctx, buf *out), void *detect_ctx,
                          void (**fn)(void *ctx, buf *out), void **ctx)
{
    extra_metrics = (metrics_ctx){detect_fn, detect_ctx, b};
    *fn = write_extra_metrics;
    *ctx = &extra_metrics;
}
