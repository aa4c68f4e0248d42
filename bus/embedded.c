/* bus/embedded.c — the single-node bus: per group, per partition, a bounded queue of
 * batch pointers guarded by a mutex (traffic is per batch, not per event, so a lock is
 * cheap and simple). A batch is shared by all groups through a reference count; the
 * durable group's completion fires the batch's durable callback. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define MAX_GROUPS 8
#define MAX_WAKEUPS 16

typedef struct partition_queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    bus_batch **ring;
    uint32_t capacity;
    uint32_t head; /* next to pop */
    uint32_t count;
    bool consumer_open;
} partition_queue;

typedef struct group {
    char name[32];
    uint32_t partitions;
    partition_queue *queues;
    bool durable;
} group;

typedef struct embedded_bus {
    bus base;
    bus_options opt;
    group groups[MAX_GROUPS];
    uint32_t group_count;
    pthread_mutex_t publish_lock; /* serializes multi-queue admission */
    atomic_bool shutting_down;
    atomic_bool publisher_blocked;
    atomic_uint_fast64_t inflight_bytes;
    atomic_uint_fast64_t inflight_batches;
    atomic_uint_fast64_t published;
    atomic_uint_fast64_t refused;
    struct {
        void (*fn)(void *ctx);
        void *ctx;
    } wakeups[MAX_WAKEUPS];
    atomic_uint wakeup_count;
} embedded_bus;

typedef struct embedded_consumer {
    bus_consumer base;
    group *group;
    partition_queue *queue;
} embedded_consumer;

static embedded_bus *E(bus *b) { return (embedded_bus *)b; }

static int eb_add_group(bus *b, const char *name, uint32_t partitions)
{
    embedded_bus *e = E(b);
    if (e->group_count == MAX_GROUPS || partitions == 0 || partitions > 1024 || strlen(name) >= sizeof e->groups[0].name)
        return -EINVAL;
    for (uint32_t i = 0; i < e->group_count; i++)
        if (!strcmp(e->groups[i].name, name)) return -EEXIST;
    group *g = &e->groups[e->group_count];
    snprintf(g->name, sizeof g->name, "%s", name);
    g->partitions = partitions;
    g->durable = e->opt.durable_group && !strcmp(name, e->opt.durable_group);
    g->queues = mamori_xcalloc(partitions, sizeof *g->queues);
    for (uint32_t p = 0; p < partitions; p++) {
        partition_queue *q = &g->queues[p];
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->nonempty, NULL);
        q->capacity = e->opt.queue_batches;
        q->ring = mamori_xcalloc(q->capacity, sizeof *q->ring);
    }
    e->group_count++;
    return 0;
}

static void fire_wakeups(embedded_bus *e)
{
    unsigned n = atomic_load(&e->wakeup_count);
    for (unsigned i = 0; i < n; i++) e->wakeups[i].fn(e->wakeups[i].ctx);
}

/* Drops one reference; the last one frees the batch and returns its memory budget. */
static void batch_unref(embedded_bus *e, bus_batch *batch)
{
    if (atomic_fetch_sub(&batch->refs, 1) != 1) return;
    atomic_fetch_sub(&e->inflight_bytes, batch->accounted_bytes);
    atomic_fetch_sub(&e->inflight_batches, 1);
    bus_batch_destroy(batch);
    if (atomic_exchange(&e->publisher_blocked, false)) fire_wakeups(e);
}

static int eb_publish(bus *b, bus_batch *batch)
{
    embedded_bus *e = E(b);
    if (atomic_load(&e->shutting_down)) return -ESHUTDOWN;
    MAMORI_ASSERT(e->group_count > 0);
    size_t bytes = batch->arena.bytes_reserved + sizeof *batch;
    pthread_mutex_lock(&e->publish_lock);
    /* Announce the intent before looking at the room: a consumer that frees room after our
     * check is then sure to see the flag and wake us (no lost wakeup). Never cleared here:
     * another publisher may be waiting on it; a spare wakeup costs one retry. */
    atomic_store(&e->publisher_blocked, true);
    /* Admission: every group's queue must have room, and the memory budget must allow it
     * (a single batch larger than the whole budget is still admitted when nothing else is
     * in flight, so it cannot wedge). */
    uint64_t inflight = atomic_load(&e->inflight_bytes);
    bool room = inflight == 0 || inflight + bytes <= e->opt.max_inflight_bytes;
    uint32_t partitions[MAX_GROUPS];
    for (uint32_t g = 0; room && g < e->group_count; g++) {
        group *grp = &e->groups[g];
        partitions[g] = (uint32_t)(batch->agent_hash % grp->partitions);
        partition_queue *q = &grp->queues[partitions[g]];
        pthread_mutex_lock(&q->lock);
        if (q->count == q->capacity) room = false;
        pthread_mutex_unlock(&q->lock);
    }
    if (!room) {
        pthread_mutex_unlock(&e->publish_lock);
        atomic_fetch_add(&e->refused, 1);
        return -EAGAIN;
    }
    batch->accounted_bytes = bytes;
    atomic_store(&batch->refs, (int)e->group_count);
    atomic_fetch_add(&e->inflight_bytes, bytes);
    atomic_fetch_add(&e->inflight_batches, 1);
    atomic_fetch_add(&e->published, 1);
    for (uint32_t g = 0; g < e->group_count; g++) {
        partition_queue *q = &e->groups[g].queues[partitions[g]];
        pthread_mutex_lock(&q->lock);
        /* Only this function adds, under publish_lock, so the room checked above is still there. */
        MAMORI_ASSERT(q->count < q->capacity);
        q->ring[(q->head + q->count) % q->capacity] = batch;
        q->count++;
        pthread_cond_signal(&q->nonempty);
        pthread_mutex_unlock(&q->lock);
    }
    pthread_mutex_unlock(&e->publish_lock);
    return 0;
}

static int eb_on_wakeup(bus *b, void (*fn)(void *ctx), void *ctx)
{
    embedded_bus *e = E(b);
    unsigned n = atomic_load(&e->wakeup_count);
    if (n == MAX_WAKEUPS) return -ENOSPC;
    e->wakeups[n].fn = fn;
    e->wakeups[n].ctx = ctx;
    atomic_store(&e->wakeup_count, n + 1);
    return 0;
}

static int eb_consumer_open(bus *b, const char *name, uint32_t partition, bus_consumer **out)
{
    embedded_bus *e = E(b);
    for (uint32_t g = 0; g < e->group_count; g++) {
        group *grp = &e->groups[g];
        if (strcmp(grp->name, name)) continue;
        if (partition >= grp->partitions) return -EINVAL;
        partition_queue *q = &grp->queues[partition];
        if (q->consumer_open) return -EBUSY;
        q->consumer_open = true;
        embedded_consumer *c = mamori_xcalloc(1, sizeof *c);
        c->base.owner = b;
        c->group = grp;
        c->queue = q;
        *out = &c->base;
        return 0;
    }
    return -ENOENT;
}

static int eb_poll(bus_consumer *bc, bus_batch **out, size_t max, int timeout_ms)
{
    embedded_consumer *c = (embedded_consumer *)bc;
    embedded_bus *e = E(bc->owner);
    partition_queue *q = c->queue;
    pthread_mutex_lock(&q->lock);
    if (q->count == 0 && timeout_ms > 0 && !atomic_load(&e->shutting_down)) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        while (q->count == 0 && !atomic_load(&e->shutting_down))
            if (pthread_cond_timedwait(&q->nonempty, &q->lock, &deadline) == ETIMEDOUT) break;
    }
    size_t n = 0;
    while (n < max && q->count > 0) {
        out[n++] = q->ring[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
    }
    bool drained = q->count == 0;
    pthread_mutex_unlock(&q->lock);
    if (n > 0 && atomic_exchange(&e->publisher_blocked, false)) fire_wakeups(e);
    if (n == 0 && drained && atomic_load(&e->shutting_down)) return -ESHUTDOWN;
    return (int)n;
}

static void eb_done(bus_consumer *bc, bus_batch **batches, size_t n)
{
    embedded_consumer *c = (embedded_consumer *)bc;
    embedded_bus *e = E(bc->owner);
    for (size_t i = 0; i < n; i++) {
        bus_batch *b = batches[i];
        if (c->group->durable && b->on_durable) b->on_durable(b, 0, b->on_durable_ctx);
        batch_unref(e, b);
    }
}

static void eb_consumer_close(bus_consumer *bc)
{
    embedded_consumer *c = (embedded_consumer *)bc;
    pthread_mutex_lock(&c->queue->lock);
    c->queue->consumer_open = false;
    pthread_mutex_unlock(&c->queue->lock);
    free(c);
}

static void eb_shutdown(bus *b)
{
    embedded_bus *e = E(b);
    atomic_store(&e->shutting_down, true);
    for (uint32_t g = 0; g < e->group_count; g++)
        for (uint32_t p = 0; p < e->groups[g].partitions; p++) {
            partition_queue *q = &e->groups[g].queues[p];
            pthread_mutex_lock(&q->lock);
            pthread_cond_broadcast(&q->nonempty);
            pthread_mutex_unlock(&q->lock);
        }
}

static void eb_destroy(bus *b)
{
    embedded_bus *e = E(b);
    for (uint32_t g = 0; g < e->group_count; g++) {
        group *grp = &e->groups[g];
        for (uint32_t p = 0; p < grp->partitions; p++) {
            partition_queue *q = &grp->queues[p];
            /* Batches never consumed: they will never be durable. */
            while (q->count > 0) {
                bus_batch *batch = q->ring[q->head];
                q->head = (q->head + 1) % q->capacity;
                q->count--;
                if (grp->durable && batch->on_durable) batch->on_durable(batch, -ESHUTDOWN, batch->on_durable_ctx);
                batch_unref(e, batch);
            }
            pthread_mutex_destroy(&q->lock);
            pthread_cond_destroy(&q->nonempty);
            free(q->ring);
        }
        free(grp->queues);
    }
    pthread_mutex_destroy(&e->publish_lock);
    free(e);
}

static void eb_get_stats(bus *b, bus_stats *out)
{
    embedded_bus *e = E(b);
    memset(out, 0, sizeof *out);
    out->published = atomic_load(&e->published);
    out->refused = atomic_load(&e->refused);
    out->inflight_bytes = atomic_load(&e->inflight_bytes);
    out->inflight_batches = atomic_load(&e->inflight_batches);
    for (uint32_t g = 0; g < e->group_count; g++)
        for (uint32_t p = 0; p < e->groups[g].partitions; p++) {
            partition_queue *q = &e->groups[g].queues[p];
            pthread_mutex_lock(&q->lock);
            out->queued_batches += q->count;
            pthread_mutex_unlock(&q->lock);
        }
}

static const struct bus_ops embedded_ops = {
    .add_group = eb_add_group,
    .publish = eb_publish,
    .on_wakeup = eb_on_wakeup,
    .consumer_open = eb_consumer_open,
    .poll = eb_poll,
    .done = eb_done,
    .consumer_close = eb_consumer_close,
    .shutdown = eb_shutdown,
    .destroy = eb_destroy,
    .get_stats = eb_get_stats,
};

int bus_embedded_create(const bus_options *opt, bus **out)
{
    if (!opt->queue_batches || !opt->max_inflight_bytes) return -EINVAL;
    embedded_bus *e = mamori_xcalloc(1, sizeof *e);
    e->base.ops = &embedded_ops;
    e->opt = *opt;
    pthread_mutex_init(&e->publish_lock, NULL);
    *out = &e->base;
    return 0;
}
