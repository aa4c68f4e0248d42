/* bus/internal.h — the implementation table behind bus.h (embedded.c, kafka.c). */
#ifndef MAMORI_BUS_INTERNAL_H
#define MAMORI_BUS_INTERNAL_H

#include "bus.h"

struct bus_ops {
    int (*add_group)(bus *b, const char *group, uint32_t partitions);
    int (*publish)(bus *b, bus_batch *batch);
    int (*on_wakeup)(bus *b, void (*fn)(void *ctx), void *ctx);
    int (*consumer_open)(bus *b, const char *group, uint32_t partition, bus_consumer **out);
    int (*poll)(bus_consumer *c, bus_batch **out, size_t max, int timeout_ms);
    void (*done)(bus_consumer *c, bus_batch **batches, size_t n);
    void (*consumer_close)(bus_consumer *c);
    void (*shutdown)(bus *b);
    void (*destroy)(bus *b);
    void (*get_stats)(bus *b, bus_stats *out);
    int (*wait_caught_up)(bus *b, const char *group, int timeout_ms); /* NULL: always caught up */
    void (*write_metrics)(bus *b, buf *out);                          /* NULL: none */
    void (*abandon)(bus_consumer *c, bus_batch **batches, size_t n);  /* NULL: done */
    int (*send_records)(bus *b, int which, const bus_record *recs, size_t n, int timeout_ms); /* NULL: none */
    int (*records_open)(bus *b, int which, const char *group, uint32_t shard, uint32_t shards, bus_records **out);
    bool durable_on_publish;
};

struct bus {
    const struct bus_ops *ops;
};

struct bus_consumer {
    bus *owner;
};

#endif
