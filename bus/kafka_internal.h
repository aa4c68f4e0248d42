/* bus/kafka_internal.h — private to bus/kafka*.c: the Kafka bus object, its consumers and what
 * the producer side (kafka.c) and the consumer side (kafka_consumer.c) share. */
#ifndef MAMORI_BUS_KAFKA_INTERNAL_H
#define MAMORI_BUS_KAFKA_INTERNAL_H

#include <librdkafka/rdkafka.h>
#if defined(__clang__)
/* librdkafka's RD_KAFKA_V_* macros type-check their arguments with GNU statement expressions,
 * expanded in our code: clang's -Wpedantic rejects them (gcc does not), which broke the fuzz
 * preset's build. */
#pragma clang diagnostic ignored "-Wgnu-statement-expression"
#endif
#include <pthread.h>

#include "internal.h"
#include "kafka_codec.h"

#define KAFKA_MAX_GROUPS 8
#define KAFKA_MAX_WAKEUPS 16
#define KAFKA_MAX_CONSUMERS 128
#define KAFKA_MAX_PARTITIONS 100000
#define KAFKA_COMMIT_INTERVAL_MS 100
#define KAFKA_CONSUMER_ARENA_CHUNK (256u * 1024)
#define KAFKA_ADMIN_TIMEOUT_MS 15000
#define KAFKA_SESSION_TIMEOUT_MS "10000"
#define KAFKA_CONSUMER_PREFETCH_KIB "16384"

typedef struct kgroup {
    char name[32];
    char kafka_id[160];
    uint32_t consumers;
} kgroup;

/* One partition as one consumer sees it: the offsets handed out and not yet done, in order. */
typedef struct part_track {
    bool assigned;
    bool dirty;            /* commit_next not yet committed */
    uint32_t generation;   /* bumped on every assign/revoke: late bus_done of old batches is ignored */
    int64_t commit_next;   /* everything below is done; -1 = nothing done since the assignment */
    int64_t next_offset;   /* after the last message handed out; -1 = none yet */
    int64_t drain_target;  /* high watermark when shutdown began */
    int64_t start_offset;  /* the group's committed offset at assignment; -1 none (from the beginning) */
    int64_t end_at_assign; /* the partition's end offset when it was assigned; -1 unknown. The lag
                            * uses it until the first fetch tells librdkafka the high watermark */
    int64_t *offsets;      /* ring of outstanding offsets */
    bool *done;
    uint32_t head, count, cap;
} part_track;

/* One assigned partition's lag: from where its consumer stands to the partition's end. The
 * end is the cached high watermark hi, or — before the first fetch, when librdkafka does not
 * know it (-1) — the end listed at assignment; -1 when neither is known: the caller counts the
 * partition as unknown, never as caught up (reading it as 0 made a test count alerts before
 * detection had consumed a partition assigned a moment earlier, docs/kafka.md 4.1). lo is
 * the cached low watermark (-1 unknown). */
static inline int64_t kafka_track_lag(const part_track *t, int64_t lo, int64_t hi)
{
    hi = hi > t->end_at_assign ? hi : t->end_at_assign;
    if (hi < 0) return -1;
    int64_t at = t->commit_next >= 0    ? t->commit_next
                 : t->count             ? t->offsets[t->head]
                 : t->next_offset >= 0  ? t->next_offset
                 : t->start_offset >= 0 ? t->start_offset
                 : lo > 0               ? lo
                                        : 0;
    return hi > at ? hi - at : 0;
}

typedef struct kafka_bus kafka_bus;

typedef struct kafka_consumer {
    bus_consumer base;
    kafka_bus *k;
    kgroup *group;
    uint32_t index;
    char name[176];
    rd_kafka_t *rk;
    kafka_decoder dec;
    pthread_mutex_t lock; /* parts: the consumer thread writes, a metrics scrape reads */
    part_track *parts;
    uint32_t part_count;
    _Atomic uint64_t outstanding_batches, outstanding_bytes;
    int64_t last_commit_ms;
    bool draining, drained;
    bool static_shard, static_assigned; /* partitions p % shards == shard, assigned by us */
    int64_t next_assign_try_ms;
    int64_t drain_deadline_ms;
    _Atomic uint64_t consumed, invalid, reread_failures, commits, commit_errors, rebalances;
} kafka_consumer;

struct kafka_bus {
    bus base;
    bus_kafka_options opt;
    char *bootstrap, *topic, *group_prefix, *client_id, *compression, *instance_id;
    char alerts_topic[256]; /* "" when none */
    char matches_topic[256]; /* "" when none */
    pthread_mutex_t records_lock; /* the records producer, made on first use (kafka_records.c) */
    rd_kafka_t *records_producer;
    char max_message_bytes[24];
    size_t max_message_value_bytes; /* the same, as a number */
    pthread_rwlock_t producer_lock; /* publishers read; the poller swaps in a new producer after a fatal error */
    rd_kafka_t *producer;
    rd_kafka_topic_t *rkt;
    char conf_queue_messages[24], conf_queue_kib[24], conf_linger_ms[24];
    _Atomic uint64_t producer_restarts;
    pthread_t poller;
    bool poller_started;
    atomic_bool stop_poller;
    atomic_bool shutting_down;
    atomic_bool publisher_blocked;
    atomic_bool fatal;
    _Atomic uint64_t inflight_bytes, inflight_batches, published, refused, delivered, delivery_errors,
        broker_errors;
    struct {
        void (*fn)(void *ctx);
        void *ctx;
    } wakeups[KAFKA_MAX_WAKEUPS];
    atomic_uint wakeup_count;
    kgroup groups[KAFKA_MAX_GROUPS];
    uint32_t group_count;
    pthread_mutex_t consumers_lock;
    kafka_consumer *consumers[KAFKA_MAX_CONSUMERS];
    uint32_t consumer_count;
    _Atomic int64_t drain_deadline_ms; /* 0 until bus_shutdown */
};

static inline kafka_bus *kafka_of(bus *b) { return (kafka_bus *)b; }

/* kafka.c: configuration shared by every client of the bus; error_cb's opaque is the bus
 * (kafka_on_client_error: any client but the producer) or a consumer
 * (kafka_on_consumer_error). A fatal error only matters for the producer (its own callback). */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *who);
rd_kafka_conf_t *kafka_conf_new(kafka_bus *k, const char *client_id, void *opaque,
                                void (*error_cb)(rd_kafka_t *, int, const char *, void *));
void kafka_on_client_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
void kafka_on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
/* partition.assignment.strategy for the consumer groups (kafka_consumer.c: cooperative-sticky,
 * or roundrobin on a librdkafka whose cooperative-sticky assignor aborts at shutdown). */
const char *kafka_assignor(void);
void kafka_report_error(kafka_bus *k, rd_kafka_t *rk, int err, const char *reason);
/* Creates the topic unless it exists or opt.partitions is 0. A broker that does not answer is
 * only logged. */
void kafka_ensure_topic(kafka_bus *k); /* the events topic and the alerts topic */
void kafka_ensure_topic_named(kafka_bus *k, const char *topic);
/* Tests: raises a fabricated fatal error in the current producer (rd_kafka_test_fatal_error). */
int kafka_test_fatal_error(bus *b);

/* kafka_consumer.c: the consumer side of the bus ops */
int kafka_add_group(bus *b, const char *group, uint32_t consumers);
int kafka_consumer_open(bus *b, const char *group, uint32_t index, bus_consumer **out);
int kafka_poll(bus_consumer *c, bus_batch **out, size_t max, int timeout_ms);
void kafka_done(bus_consumer *c, bus_batch **batches, size_t n);
void kafka_abandon(bus_consumer *c, bus_batch **batches, size_t n);
/* kafka_records.c: the alerts topic (bus_send_records, bus_records_*) */
int kafka_send_records(bus *b, int which, const bus_record *recs, size_t n, int timeout_ms);
int kafka_records_open(bus *b, int which, const char *group, uint32_t shard, uint32_t shards, bus_records **out);
void kafka_consumer_close(bus_consumer *c);
int kafka_wait_caught_up(bus *b, const char *group, int timeout_ms);
/* Messages of the consumer's assigned partitions not yet done (cached watermarks), and how
 * many partitions are assigned to it. */
/* Messages of the assigned partitions not yet done; *unknown counts assigned partitions whose
 * end is not known yet (their lag is not in the sum: "0" with unknown > 0 is not caught up). */
uint64_t kafka_consumer_lag(kafka_consumer *c, uint32_t *assigned, uint32_t *unknown);

#endif
