/* bus/bus.h — how a batch travels from ingest to its consumers (store, detect).
 *
 * Ingest publishes normalized batches; consumer groups ("store", "detect") each see every
 * batch once, partitioned by agent so one host's batches stay in order. A batch becomes
 * *durable* when the bus says so: in the embedded bus, when the durable group (the store)
 * has written it to its WAL; with Kafka, when the broker acknowledged it (acks=all). Only
 * then does ingest ACK the agent. Ingest, store and detect only see this header; the
 * embedded and Kafka implementations live behind it. */
#ifndef MAMORI_BUS_H
#define MAMORI_BUS_H

#include "core/arena.h"
#include "core/base.h"
#include "core/buf.h"
#include "core/event.h"

#include <stdatomic.h>

typedef struct bus bus;
typedef struct bus_consumer bus_consumer;
typedef struct bus_batch bus_batch;

/* Called once per published batch, from a bus thread, when it is durable (status 0) or
 * can never become durable (negative errno: e.g. the bus shut down first). Must be quick
 * and must not call back into the bus. It may be given a copy of the batch that carries its
 * identity and ack fields only (no events): mamorid's ingest ledger (server/ingest_ledger.c)
 * calls it after recording the seq. */
typedef void (*bus_durable_fn)(bus_batch *batch, int status, void *ctx);

struct bus_batch {
    /* identity (strings live in the arena) */
    const char *tenant;
    const char *agent_id;
    uint64_t tenant_hash; /* event_tenant_hash */
    uint64_t agent_hash;  /* event_agent_hash */
    uint64_t seq;
    int64_t received_us;
    /* content: normalized events, in order (rejected events are not here) */
    mamori_event *events;
    uint32_t event_count;
    uint32_t rejected_count;
    /* opaque to the bus: what ingest needs to answer the agent when durable */
    const char *ack_payload;
    uint32_t ack_payload_len;
    uint32_t ack_thread;   /* ingest thread that owns the agent */
    bus_durable_fn on_durable;
    void *on_durable_ctx;
    int64_t published_mono_us; /* for ack latency */
    /* memory: everything above is allocated in this arena */
    arena arena;
    /* bus bookkeeping */
    atomic_int refs;
    uint32_t partition;
    size_t accounted_bytes;
    /* Kafka bus: where a consumed batch came from (offset, assignment generation of its
     * partition) and, for a published one, its encoded message (kept across -EAGAIN) */
    int64_t offset;
    uint32_t assignment;
    void *encoded;
};

/* Creates an empty batch with its own arena (chunk size hint). Owned by the caller until
 * published; bus_batch_destroy only for batches never published. */
bus_batch *bus_batch_create(size_t arena_chunk_bytes);
void bus_batch_destroy(bus_batch *b);

typedef struct bus_options {
    const char *durable_group;  /* group whose completion makes a batch durable ("store") */
    uint32_t queue_batches;     /* per partition */
    uint64_t max_inflight_bytes;
} bus_options;

/* Embedded bus: bounded in-process queues. */
int bus_embedded_create(const bus_options *opt, bus **out) MAMORI_WUR;

/* Kafka bus (bus/kafka*.c, docs/kafka.md): one topic, one message per batch, consumer groups
 * "<group_prefix><group>". A batch is durable when the broker acknowledged it (acks=all);
 * consumers commit a partition's offset only up to the first batch not yet bus_done. The
 * bus_add_group partition count is the number of consumers (rdkafka instances) of the group
 * in this process; Kafka assigns the topic's partitions among all members of the group. */
typedef struct bus_kafka_options {
    const char *bootstrap;     /* "host:port[,host:port]" */
    const char *topic;         /* "mamori.events" */
    const char *group_prefix;  /* "mamori-": groups mamori-store, mamori-detect */
    const char *client_id;     /* prefix of the rdkafka client.id, e.g. "mamorid" */
    const char *compression;   /* none | lz4 | zstd | snappy | gzip */
    uint32_t partitions;       /* when this process creates the topic; 0: never create it */
    uint32_t replication_factor; /* when this process creates the topic; 0: broker default */
    uint32_t linger_ms;
    uint32_t max_inflight_batches; /* published, not yet acknowledged by the broker */
    uint64_t max_inflight_bytes;   /* their memory; also each consumer's budget of undone batches */
    uint32_t max_batch_events;     /* ingest's limits: consumed messages with more lines are refused; */
    uint32_t max_batch_bytes;      /* messages are sized 2x this + 1 KiB per event + 1 MiB at most */
    int64_t max_past_us;       /* event time bounds for messages without event keys (0: none) */
    int64_t max_future_us;
    uint32_t drain_timeout_ms; /* after bus_shutdown: producer flush, then consumers catch up */
    const char *instance_id;   /* non-empty: static membership, group.instance.id "<id>-<group>-<n>" */
    /* store_shards > 0: the group "store" is not balanced by Kafka; this process's store
     * consumer owns exactly the partitions p with p % store_shards == store_shard (a store
     * shard's data stays where it was written: docs/scaling.md). 0: group subscription. */
    uint32_t store_shard, store_shards;
    const char *alerts_topic;  /* records topic of alerts (bus_send_records); NULL or "": none */
    const char *matches_topic; /* records topic of re-keyed correlation matches; NULL or "": none */
} bus_kafka_options;

/* Creates the producer (idempotent, acks=all) and makes sure the topic exists (creating it
 * with `partitions` when it does not; a broker that is down is logged, not an error: it is
 * waited for like any other outage). */
int bus_kafka_create(const bus_kafka_options *opt, bus **out) MAMORI_WUR;

/* Declares a consumer group with `partitions` partitions before publishing starts; each
 * partition is then consumed by exactly one bus_consumer. */
int bus_add_group(bus *b, const char *group, uint32_t partitions) MAMORI_WUR;

/* Publishes a batch to every group. Takes ownership on success (0). Returns -EAGAIN when a
 * queue is full or the in-flight memory budget is used up: the caller keeps the batch,
 * stops reading from its source, and retries after the wakeup callback fires.
 * Thread-safe. */
int bus_publish(bus *b, bus_batch *batch) MAMORI_WUR;

/* Registers a function the bus calls (from a consumer thread) when room appears after a
 * publish was refused. At most 16 registrations. */
int bus_on_wakeup(bus *b, void (*fn)(void *ctx), void *ctx) MAMORI_WUR;

/* Opens the consumer of one partition of a group. */
int bus_consumer_open(bus *b, const char *group, uint32_t partition, bus_consumer **out) MAMORI_WUR;
/* Waits up to timeout_ms for batches; returns how many were stored in out (0 on timeout),
 * or -ESHUTDOWN once the bus is closed and the partition drained. The consumer now holds
 * a reference to each. */
int bus_poll(bus_consumer *c, bus_batch **out, size_t max, int timeout_ms) MAMORI_WUR;
/* The consumer's work on these batches is complete (for the durable group: durable).
 * Drops the consumer's references. */
void bus_done(bus_consumer *c, bus_batch **batches, size_t n);
/* Drops the consumer's references without marking the batches done, for work that could not
 * be completed (e.g. detection at shutdown with the store failing): the Kafka bus never
 * commits past them, so they are delivered again after a restart or a rebalance; the embedded
 * bus cannot redeliver and treats this as bus_done (start-up re-detection covers the gap). */
void bus_abandon(bus_consumer *c, bus_batch **batches, size_t n);
/* True when a published batch is durable before any consumer sees it (Kafka: the broker
 * acknowledged it, acks=all), so consumers need not wait for the durable group. */
bool bus_durable_on_publish(const bus *b);
void bus_consumer_close(bus_consumer *c);

/* Waits up to timeout_ms until `group` has finished (committed) everything the bus held when
 * the call began: 0 when caught up, -ETIMEDOUT if not yet (call again), another negative errno
 * on error. The embedded bus is always caught up at start-up. mamorid calls this for the
 * store group before ingest starts, so WELCOME's resume point covers every batch Kafka has. */
int bus_wait_caught_up(bus *b, const char *group, int timeout_ms) MAMORI_WUR;

/* ---- records: keyed messages other than event batches (Kafka only; alerts of detect
 * workers that run without the store role, docs/scaling.md; re-keyed correlation matches,
 * docs/detection.md §11.8) ---- */
typedef struct bus_record {
    const char *key;    /* "tenant/agent": the same key, the same partition as the agent's events */
    size_t key_len;
    const void *meta;   /* binary header "mamori.meta" (may be NULL) */
    size_t meta_len;
    const void *value;
    size_t value_len;
    int32_t partition;  /* polled records: where they were read (for logs and commits) */
    int64_t offset;
} bus_record;
typedef struct bus_records bus_records;
/* Which records topic (bus_kafka_options): alerts, or re-keyed correlation matches
 * (mamori.matches, keyed tenant + group-by value: docs/detection.md §11.8). */
typedef enum bus_records_topic { BUS_RECORDS_ALERTS = 0, BUS_RECORDS_MATCHES = 1 } bus_records_topic;

/* Produces n records to the alerts topic and waits up to timeout_ms until the broker has
 * every one (acks=all, idempotent): 0, or a negative errno (some may have been written:
 * records must be idempotent downstream). -ENOTSUP without an alerts topic. Thread-safe. */
int bus_send_records(bus *b, const bus_record *recs, size_t n, int timeout_ms) MAMORI_WUR;
/* Opens a reader of the alerts topic in group "<prefix><group>" that owns the partitions
 * p % shards == shard (shards 0: all), each from the group's committed offset. */
int bus_records_open(bus *b, const char *group, uint32_t shard, uint32_t shards, bus_records **out) MAMORI_WUR;
/* Up to max records (borrowed until bus_records_done); 0 on timeout. */
int bus_records_poll(bus_records *r, bus_record *out, size_t max, int timeout_ms) MAMORI_WUR;
/* Everything polled so far is durable downstream: commit it (asynchronously). */
void bus_records_done(bus_records *r);
void bus_records_close(bus_records *r);
/* The same on a chosen records topic (-ENOTSUP when that topic is not configured). */
int bus_send_records_on(bus *b, bus_records_topic which, const bus_record *recs, size_t n, int timeout_ms) MAMORI_WUR;
int bus_records_open_on(bus *b, bus_records_topic which, const char *group, uint32_t shard, uint32_t shards,
                        bus_records **out) MAMORI_WUR;
/* Releases everything polled so far, committing only the given next offsets (partition,
 * offset of the first record still needed): a reader whose durable output lags its reading
 * (correlation state rebuilt from the log after a crash) commits less than it read. */
typedef struct bus_records_mark {
    int32_t partition;
    int64_t offset;
} bus_records_mark;
void bus_records_done_at(bus_records *r, const bus_records_mark *marks, size_t n);

/* Appends the bus's own metrics (Prometheus text; nothing for the embedded bus). */
void bus_write_metrics(bus *b, buf *out);

/* Stops accepting publishes; consumers drain what is queued and then see -ESHUTDOWN. */
void bus_shutdown(bus *b);
/* Frees the bus; all consumers must be closed. */
void bus_destroy(bus *b);

typedef struct bus_stats {
    uint64_t published;
    uint64_t refused;        /* -EAGAIN returns */
    uint64_t inflight_bytes;
    uint64_t inflight_batches;
    uint64_t queued_batches; /* sum over all partitions */
} bus_stats;
void bus_get_stats(bus *b, bus_stats *out);

#endif
