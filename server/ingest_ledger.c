/* server/ingest_ledger.c — where an ingest process without the store role gets its agents'
 * resume points (WELCOME). In one process the store's durable seqs give them; an ingest role
 * on its own has no store, so it keeps a ledger in its own RocksDB: each batch the broker
 * acknowledged is recorded (agent, seq; no events) before ingest is told it is durable,
 * i.e. before the agent gets its ACK. The ledger is then never below an ACK an agent holds,
 * and never above what Kafka has; a batch delivered but not yet in the ledger when the process
 * died is simply resent by its agent and skipped by the store as a duplicate.
 * Implemented as a bus that wraps the Kafka bus: publish swaps the batch's durable callback
 * for the ledger's, the broker's delivery report queues the batch's identity for the ledger
 * thread, which records a group of them in one RocksDB write and then calls ingest's
 * callbacks in order. Everything else is forwarded. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/internal.h"
#include "core/log.h"

#define MOD "ingest"
#define LEDGER_GROUP_MAX 1024u

typedef struct ledger_bus ledger_bus;

struct entry;

/* What a published batch needs to reach ingest's callback later (in the batch's arena). */
typedef struct stash {
    bus_durable_fn fn;
    void *ctx;
    ledger_bus *ledger;
} stash;

struct ledger_bus {
    bus base;
    bus *inner;
    store *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct entry **queue; /* delivered batches, in delivery order */
    uint32_t count, cap;
    bool stop;
    _Atomic uint64_t recorded, write_errors;
};

static ledger_bus *ledger_of(bus *b) { return (ledger_bus *)b; }

/* A delivered batch's identity and ack fields, copied: the batch itself is freed when the
 * delivery report returns. `view` is what ingest's callback gets (no events, no arena). */
typedef struct entry {
    bus_batch view;
    int status;
    char data[]; /* tenant, agent id (NUL-terminated), ack payload */
} entry;

/* The delivery report (a bus thread): copy, queue for the ledger thread. */
static void ledger_on_durable(bus_batch *b, int status, void *ctx)
{
    stash *st = ctx;
    ledger_bus *l = st->ledger;
    size_t tl = strlen(b->tenant), al = strlen(b->agent_id);
    entry *e = mamori_xcalloc(1, sizeof *e + tl + 1 + al + 1 + b->ack_payload_len);
    memcpy(e->data, b->tenant, tl + 1);
    memcpy(e->data + tl + 1, b->agent_id, al + 1);
    if (b->ack_payload_len) memcpy(e->data + tl + 1 + al + 1, b->ack_payload, b->ack_payload_len);
    e->view.tenant = e->data;
    e->view.agent_id = e->data + tl + 1;
    e->view.tenant_hash = b->tenant_hash;
    e->view.agent_hash = b->agent_hash;
    e->view.seq = b->seq;
    e->view.received_us = b->received_us;
    e->view.ack_payload = b->ack_payload_len ? e->data + tl + 1 + al + 1 : NULL;
    e->view.ack_payload_len = b->ack_payload_len;
    e->view.ack_thread = b->ack_thread;
    e->view.published_mono_us = b->published_mono_us;
    e->view.on_durable = st->fn;
    e->view.on_durable_ctx = st->ctx;
    e->status = status;
    pthread_mutex_lock(&l->mu);
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->queue = mamori_xrealloc(l->queue, l->cap * sizeof *l->queue);
    }
    l->queue[l->count++] = e;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void *ledger_main(void *arg)
{
    ledger_bus *l = arg;
    pthread_setname_np(pthread_self(), "ingest-ledger");
    entry **taken = mamori_xcalloc(LEDGER_GROUP_MAX, sizeof *taken);
    store_batch *group = mamori_xcalloc(LEDGER_GROUP_MAX, sizeof *group);
    for (;;) {
        pthread_mutex_lock(&l->mu);
        while (!l->count && !l->stop) pthread_cond_wait(&l->cv, &l->mu);
        if (!l->count && l->stop) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        uint32_t n = MAMORI_MIN(l->count, LEDGER_GROUP_MAX);
        memcpy(taken, l->queue, n * sizeof *taken);
        memmove(l->queue, l->queue + n, (l->count - n) * sizeof *l->queue);
        l->count -= n;
        pthread_mutex_unlock(&l->mu);
        uint32_t g = 0;
        for (uint32_t i = 0; i < n; i++)
            if (taken[i]->status == 0) {
                const bus_batch *v = &taken[i]->view;
                group[g++] = (store_batch){v->tenant, v->tenant_hash, v->agent_id, v->agent_hash, v->seq, NULL, 0};
            }
        /* never tell ingest "durable" before the ledger has it: retry until it does */
        uint32_t backoff_ms = 50;
        while (g) {
            store_write_result res;
            int rc = store_write_group(l->db, group, g, &res);
            if (rc == 0) break;
            atomic_fetch_add(&l->write_errors, 1);
            LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "ledger: recording %u acknowledged batches failed, retrying: %s", g,
                            strerror(-rc));
            struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            if (backoff_ms < 5000) backoff_ms *= 2;
        }
        atomic_fetch_add(&l->recorded, g);
        for (uint32_t i = 0; i < n; i++) {
            entry *e = taken[i];
            if (e->view.on_durable) e->view.on_durable(&e->view, e->status, e->view.on_durable_ctx);
            free(e);
        }
    }
    free(taken);
    free(group);
    return NULL;
}

/* ---- the wrapped bus ---- */

static int lb_add_group(bus *b, const char *group, uint32_t partitions)
{
    return bus_add_group(ledger_of(b)->inner, group, partitions);
}

static int lb_publish(bus *b, bus_batch *batch)
{
    ledger_bus *l = ledger_of(b);
    bus_durable_fn fn = batch->on_durable;
    void *ctx = batch->on_durable_ctx;
    stash *st = arena_alloc(&batch->arena, sizeof *st);
    *st = (stash){fn, ctx, l};
    batch->on_durable = ledger_on_durable;
    batch->on_durable_ctx = st;
    int rc = bus_publish(l->inner, batch);
    if (rc) { /* the caller keeps the batch and publishes it again later */
        batch->on_durable = fn;
        batch->on_durable_ctx = ctx;
    }
    return rc;
}

static int lb_on_wakeup(bus *b, void (*fn)(void *ctx), void *ctx) { return bus_on_wakeup(ledger_of(b)->inner, fn, ctx); }

static int lb_consumer_open(bus *b, const char *group, uint32_t partition, bus_consumer **out)
{
    return bus_consumer_open(ledger_of(b)->inner, group, partition, out); /* the consumer's owner is the inner bus */
}

static void lb_shutdown(bus *b) { bus_shutdown(ledger_of(b)->inner); }

static void lb_destroy(bus *b)
{
    ledger_bus *l = ledger_of(b);
    bus_destroy(l->inner); /* every delivery report (or failure) is queued by now */
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    free(l->queue);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void lb_get_stats(bus *b, bus_stats *out) { bus_get_stats(ledger_of(b)->inner, out); }

static int lb_wait_caught_up(bus *b, const char *group, int timeout_ms)
{
    return bus_wait_caught_up(ledger_of(b)->inner, group, timeout_ms);
}

static void lb_write_metrics(bus *b, buf *out)
{
    ledger_bus *l = ledger_of(b);
    bus_write_metrics(l->inner, out);
    buf_printf(out,
               "# HELP mamori_ingest_ledger_recorded_total Acknowledged batches recorded as resume points (ingest "
               "without the store role).\n# TYPE mamori_ingest_ledger_recorded_total counter\n"
               "mamori_ingest_ledger_recorded_total %llu\n"
               "# HELP mamori_ingest_ledger_write_errors_total Failed ledger writes (retried; acks wait).\n"
               "# TYPE mamori_ingest_ledger_write_errors_total counter\nmamori_ingest_ledger_write_errors_total %llu\n",
               (unsigned long long)atomic_load(&l->recorded), (unsigned long long)atomic_load(&l->write_errors));
}

static int lb_send_records(bus *b, int which, const bus_record *recs, size_t n, int timeout_ms)
{
    return bus_send_records_on(ledger_of(b)->inner, (bus_records_topic)which, recs, n, timeout_ms);
}

static int lb_records_open(bus *b, int which, const char *group, uint32_t shard, uint32_t shards, bus_records **out)
{
    return bus_records_open_on(ledger_of(b)->inner, (bus_records_topic)which, group, shard, shards, out);
}

static const struct bus_ops ledger_ops = {
    .send_records = lb_send_records,
    .records_open = lb_records_open,
    .add_group = lb_add_group,
    .publish = lb_publish,
    .on_wakeup = lb_on_wakeup,
    .consumer_open = lb_consumer_open,
    .shutdown = lb_shutdown,
    .destroy = lb_destroy,
    .get_stats = lb_get_stats,
    .wait_caught_up = lb_wait_caught_up,
    .write_metrics = lb_write_metrics,
    .durable_on_publish = true,
};

int server_ingest_ledger_wrap(bus *inner, store *db, bus **out)
{
    MAMORI_ASSERT(inner && db && out && bus_durable_on_publish(inner));
    ledger_bus *l = mamori_xcalloc(1, sizeof *l);
    l->base.ops = &ledger_ops;
    l->inner = inner;
    l->db = db;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    int rc = -pthread_create(&l->thread, NULL, ledger_main, l);
    if (rc) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return rc;
    }
    *out = &l->base;
    return 0;
}
