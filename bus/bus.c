/* bus/bus.c — batch lifetime and dispatch to the configured bus implementation. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Recycled batches: a batch arena holds a few MiB once grown (decompressed text, parsed
 * DOM, normalized events); reusing it instead of freeing saves the allocation and the
 * page faults of fresh memory on every batch. Bounded so a burst does not pin memory. */
#define BATCH_POOL_MAX 32
#define BATCH_ARENA_RETAIN (4u * 1024 * 1024)

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static bus_batch *pool[BATCH_POOL_MAX];
static size_t pool_count;

bus_batch *bus_batch_create(size_t arena_chunk_bytes)
{
    bus_batch *b = NULL;
    pthread_mutex_lock(&pool_lock);
    if (pool_count) b = pool[--pool_count];
    pthread_mutex_unlock(&pool_lock);
    if (b && b->arena.chunk_bytes != arena_chunk_bytes) {
        arena_fini(&b->arena);
        free(b);
        b = NULL;
    }
    if (b) {
        arena keep = b->arena; /* reset on release */
        memset(b, 0, sizeof *b);
        b->arena = keep;
    } else {
        b = mamori_xcalloc(1, sizeof *b);
        arena_init(&b->arena, arena_chunk_bytes);
        arena_set_retain(&b->arena, BATCH_ARENA_RETAIN);
    }
    atomic_init(&b->refs, 0);
    return b;
}

void bus_batch_destroy(bus_batch *b)
{
    if (!b) return;
    arena_reset(&b->arena);
    pthread_mutex_lock(&pool_lock);
    bool pooled = pool_count < BATCH_POOL_MAX;
    if (pooled) pool[pool_count++] = b;
    pthread_mutex_unlock(&pool_lock);
    if (!pooled) {
        arena_fini(&b->arena);
        free(b);
    }
}

int bus_add_group(bus *b, const char *group, uint32_t partitions) { return b->ops->add_group(b, group, partitions); }
int bus_publish(bus *b, bus_batch *batch) { return b->ops->publish(b, batch); }
int bus_on_wakeup(bus *b, void (*fn)(void *ctx), void *ctx) { return b->ops->on_wakeup(b, fn, ctx); }
int bus_consumer_open(bus *b, const char *group, uint32_t partition, bus_consumer **out)
{
    return b->ops->consumer_open(b, group, partition, out);
}
int bus_poll(bus_consumer *c, bus_batch **out, size_t max, int timeout_ms)
{
    return c->owner->ops->poll(c, out, max, timeout_ms);
}
void bus_done(bus_consumer *c, bus_batch **batches, size_t n) { c->owner->ops->done(c, batches, n); }
void bus_abandon(bus_consumer *c, bus_batch **batches, size_t n)
{
    if (c->owner->ops->abandon) c->owner->ops->abandon(c, batches, n);
    else c->owner->ops->done(c, batches, n);
}
bool bus_durable_on_publish(const bus *b) { return b->ops->durable_on_publish; }
int bus_send_records_on(bus *b, bus_records_topic which, const bus_record *recs, size_t n, int timeout_ms)
{
    return b->ops->send_records ? b->ops->send_records(b, (int)which, recs, n, timeout_ms) : -ENOTSUP;
}
int bus_records_open_on(bus *b, bus_records_topic which, const char *group, uint32_t shard, uint32_t shards,
                        bus_records **out)
{
    return b->ops->records_open ? b->ops->records_open(b, (int)which, group, shard, shards, out) : -ENOTSUP;
}
int bus_send_records(bus *b, const bus_record *recs, size_t n, int timeout_ms)
{
    return bus_send_records_on(b, BUS_RECORDS_ALERTS, recs, n, timeout_ms);
}
int bus_records_open(bus *b, const char *group, uint32_t shard, uint32_t shards, bus_records **out)
{
    return bus_records_open_on(b, BUS_RECORDS_ALERTS, group, shard, shards, out);
}
void bus_consumer_close(bus_consumer *c)
{
    if (c) c->owner->ops->consumer_close(c);
}
void bus_shutdown(bus *b) { b->ops->shutdown(b); }
void bus_destroy(bus *b)
{
    if (b) b->ops->destroy(b);
}
void bus_get_stats(bus *b, bus_stats *out) { b->ops->get_stats(b, out); }
int bus_wait_caught_up(bus *b, const char *group, int timeout_ms)
{
    return b->ops->wait_caught_up ? b->ops->wait_caught_up(b, group, timeout_ms) : 0;
}
void bus_write_metrics(bus *b, buf *out)
{
    if (b->ops->write_metrics) b->ops->write_metrics(b, out);
}
