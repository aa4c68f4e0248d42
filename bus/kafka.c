/* bus/kafka.c — the bus on Apache Kafka (librdkafka), docs/kafka.md. Publishing encodes a
 * batch as one message (bus/kafka_codec.c) and hands it to an idempotent producer (acks=all,
 * no local timeout, gapless): the delivery report, served by the "kafka-producer" thread, is
 * what makes the batch durable. Refusing a publish (-EAGAIN) is the only reaction to a slow or
 * absent broker: nothing is dropped, ingest stops reading its agents.
 * Each bus_consumer is one rdkafka consumer in the group "<prefix><group>" (cooperative-sticky,
 * no auto-commit). Offsets are committed per partition up to the first batch the caller has
 * not yet bus_done, so a crash only ever redelivers, and redelivery is idempotent downstream
 * (the store skips seqs it has; alert ids are deterministic). */
#include "internal.h"
#include "kafka_codec.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "bus"
#define MAX_GROUPS 8
#define MAX_WAKEUPS 16
#define MAX_CONSUMERS 128
#define MAX_PARTITIONS 100000
#define COMMIT_INTERVAL_MS 100
#define CONSUMER_ARENA_CHUNK (256u * 1024)
#define ADMIN_TIMEOUT_MS 15000
#define SESSION_TIMEOUT_MS "10000"
#define CONSUMER_PREFETCH_KIB "16384"

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
    int64_t *offsets;      /* ring of outstanding offsets */
    bool *done;
    uint32_t head, count, cap;
} part_track;

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
    int64_t drain_deadline_ms;
    _Atomic uint64_t consumed, invalid, commits, commit_errors, rebalances;
} kafka_consumer;

struct kafka_bus {
    bus base;
    bus_kafka_options opt;
    char *bootstrap, *topic, *group_prefix, *client_id, *compression;
    char max_message_bytes[24];
    rd_kafka_t *producer;
    rd_kafka_topic_t *rkt;
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
    } wakeups[MAX_WAKEUPS];
    atomic_uint wakeup_count;
    kgroup groups[MAX_GROUPS];
    uint32_t group_count;
    pthread_mutex_t consumers_lock;
    kafka_consumer *consumers[MAX_CONSUMERS];
    uint32_t consumer_count;
    _Atomic int64_t drain_deadline_ms; /* 0 until bus_shutdown */
};

static kafka_bus *K(bus *b) { return (kafka_bus *)b; }

/* ---- librdkafka configuration and callbacks shared by producer and consumers ---- */

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *who)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) == RD_KAFKA_CONF_OK) return 0;
    LOG_ERROR(MOD, "kafka %s: cannot set %s=%s: %s", who, name, value, errstr);
    return -EINVAL;
}

static void on_log(const rd_kafka_t *rk, int level, const char *facility, const char *text)
{
    (void)rk;
    if (!strcmp(facility, "CONFWARN") && strstr(text, "gapless")) return; /* chosen on purpose: docs/kafka.md */
    if (level <= 4) LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 2, "kafka %s: %s", facility, text);
    else LOG_DEBUG(MOD, "kafka %s: %s", facility, text);
}

static void report_error(kafka_bus *k, rd_kafka_t *rk, int err, const char *reason)
{
    if (err == RD_KAFKA_RESP_ERR__FATAL && rk == k->producer) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        atomic_store(&k->fatal, true);
        LOG_ERROR(MOD, "kafka %s: fatal error %s: %s; publishing stops (backpressure on every agent) until mamorid "
                  "is restarted", rd_kafka_name(rk), rd_kafka_err2name(orig), why);
        return;
    }
    atomic_fetch_add_explicit(&k->broker_errors, 1, memory_order_relaxed);
    LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka %s: %s: %s", rd_kafka_name(rk),
                    rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* error callbacks: the producer's (and the monitor's) opaque is the bus, a consumer's is itself */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) { report_error(opaque, rk, err, reason); }

static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);

static rd_kafka_conf_t *base_conf(kafka_bus *k, const char *client_id, void *opaque,
                                  void (*error_cb)(rd_kafka_t *, int, const char *, void *))
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", k->bootstrap, client_id) ||
        conf_set(conf, "client.id", client_id, client_id) ||
        conf_set(conf, "topic.metadata.refresh.interval.ms", "10000", client_id)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    return conf;
}

/* ---- producing ---- */

static void fire_wakeups(kafka_bus *k)
{
    unsigned n = atomic_load(&k->wakeup_count);
    for (unsigned i = 0; i < n; i++) k->wakeups[i].fn(k->wakeups[i].ctx);
}

static int status_of(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return 0;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY: return -ESHUTDOWN;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT: return -ETIMEDOUT;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: return -EMSGSIZE;
    default: return -EIO;
    }
}

/* The delivery report: the broker has the batch (all in-sync replicas), or it never will. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    kafka_bus *k = opaque;
    bus_batch *b = m->_private;
    int status = status_of(m->err);
    if (status) {
        atomic_fetch_add_explicit(&k->delivery_errors, 1, memory_order_relaxed);
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "kafka: batch %llu of agent %s not delivered: %s (the agent resends it)",
                        (unsigned long long)b->seq, b->agent_id, rd_kafka_err2str(m->err));
    } else {
        atomic_fetch_add_explicit(&k->delivered, 1, memory_order_relaxed);
    }
    if (b->on_durable) b->on_durable(b, status, b->on_durable_ctx);
    size_t bytes = b->accounted_bytes;
    bus_batch_destroy(b);
    atomic_fetch_sub(&k->inflight_bytes, bytes);
    atomic_fetch_sub(&k->inflight_batches, 1);
    if (atomic_exchange(&k->publisher_blocked, false)) fire_wakeups(k);
}

static void *poller_main(void *arg)
{
    kafka_bus *k = arg;
    pthread_setname_np(pthread_self(), "kafka-producer");
    while (!atomic_load(&k->stop_poller)) rd_kafka_poll(k->producer, 100);
    return NULL;
}

static int kb_publish(bus *bb, bus_batch *batch)
{
    kafka_bus *k = K(bb);
    if (atomic_load(&k->shutting_down)) return -ESHUTDOWN;
    /* announce before looking at the room (see embedded.c: no lost wakeup) */
    atomic_store(&k->publisher_blocked, true);
    if (atomic_load(&k->fatal)) {
        atomic_fetch_add(&k->refused, 1);
        return -EAGAIN;
    }
    /* encoded once, kept in the batch arena across refusals */
    kafka_message *msg = batch->encoded;
    if (!msg) {
        msg = arena_alloc(&batch->arena, sizeof *msg);
        kafka_encode_batch(batch, msg);
        batch->encoded = msg;
    }
    size_t bytes = batch->arena.bytes_reserved + sizeof *batch;
    uint64_t before = atomic_fetch_add(&k->inflight_bytes, bytes);
    uint64_t batches_before = atomic_fetch_add(&k->inflight_batches, 1);
    if ((before > 0 && before + bytes > k->opt.max_inflight_bytes) || batches_before >= k->opt.max_inflight_batches) {
        atomic_fetch_sub(&k->inflight_bytes, bytes);
        atomic_fetch_sub(&k->inflight_batches, 1);
        atomic_fetch_add(&k->refused, 1);
        return -EAGAIN;
    }
    batch->accounted_bytes = bytes;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(msg->header_count);
    for (uint32_t i = 0; i < msg->header_count; i++)
        rd_kafka_header_add(hdrs, msg->headers[i].name, -1, msg->headers[i].value, (ssize_t)msg->headers[i].value_len);
    /* no copy: key and value live in the batch arena until the delivery report frees it */
    rd_kafka_resp_err_t err = rd_kafka_producev(
        k->producer, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_MSGFLAGS(0),
        RD_KAFKA_V_KEY((void *)msg->key, msg->key_len), RD_KAFKA_V_VALUE((void *)msg->value, msg->value_len),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(batch), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(hdrs); /* not taken on failure */
        atomic_fetch_sub(&k->inflight_bytes, bytes);
        atomic_fetch_sub(&k->inflight_batches, 1);
        atomic_fetch_add(&k->refused, 1);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "kafka: cannot produce batch %llu of agent %s: %s; retrying",
                            (unsigned long long)batch->seq, batch->agent_id, rd_kafka_err2str(err));
        return -EAGAIN;
    }
    atomic_fetch_add(&k->published, 1);
    return 0;
}

static int kb_on_wakeup(bus *bb, void (*fn)(void *ctx), void *ctx)
{
    kafka_bus *k = K(bb);
    unsigned n = atomic_load(&k->wakeup_count);
    if (n == MAX_WAKEUPS) return -ENOSPC;
    k->wakeups[n].fn = fn;
    k->wakeups[n].ctx = ctx;
    atomic_store(&k->wakeup_count, n + 1);
    return 0;
}

/* ---- consuming: offsets handed out, done, committed ---- */

static part_track *track_of(kafka_consumer *c, int32_t partition)
{
    if (partition < 0 || partition >= MAX_PARTITIONS) return NULL;
    uint32_t p = (uint32_t)partition;
    if (p >= c->part_count) {
        uint32_t n = c->part_count ? c->part_count : 8;
        while (n <= p) n *= 2;
        c->parts = mamori_xrealloc(c->parts, n * sizeof *c->parts);
        memset(c->parts + c->part_count, 0, (n - c->part_count) * sizeof *c->parts);
        for (uint32_t i = c->part_count; i < n; i++) c->parts[i].commit_next = c->parts[i].next_offset = -1;
        c->part_count = n;
    }
    return &c->parts[p];
}

static void track_reset(part_track *t, bool assigned)
{
    t->assigned = assigned;
    t->dirty = false;
    t->generation++;
    t->commit_next = t->next_offset = -1;
    t->drain_target = -1;
    t->head = t->count = 0;
}

static void track_push(part_track *t, int64_t offset, bool done)
{
    if (t->count == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        int64_t *o = mamori_xcalloc(cap, sizeof *o);
        bool *d = mamori_xcalloc(cap, sizeof *d);
        for (uint32_t i = 0; i < t->count; i++) {
            o[i] = t->offsets[(t->head + i) % t->cap];
            d[i] = t->done[(t->head + i) % t->cap];
        }
        free(t->offsets);
        free(t->done);
        t->offsets = o;
        t->done = d;
        t->head = 0;
        t->cap = cap;
    }
    uint32_t i = (t->head + t->count) % t->cap;
    t->offsets[i] = offset;
    t->done[i] = done;
    t->count++;
    t->next_offset = offset + 1;
}

/* Marks offset done and advances the commit point over the done prefix. */
static void track_done(part_track *t, int64_t offset)
{
    for (uint32_t i = 0; i < t->count; i++) {
        uint32_t j = (t->head + i) % t->cap;
        if (t->offsets[j] == offset) {
            t->done[j] = true;
            break;
        }
    }
    while (t->count && t->done[t->head]) {
        t->commit_next = t->offsets[t->head] + 1;
        t->dirty = true;
        t->head = (t->head + 1) % t->cap;
        t->count--;
    }
}

/* Commits every partition whose commit point moved (only those in `only`, when given). */
static void commit_dirty(kafka_consumer *c, const rd_kafka_topic_partition_list_t *only, bool sync)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    pthread_mutex_lock(&c->lock);
    for (uint32_t p = 0; p < c->part_count; p++) {
        part_track *t = &c->parts[p];
        if (!t->assigned || !t->dirty) continue;
        if (only && !rd_kafka_topic_partition_list_find(only, c->k->topic, (int32_t)p)) continue;
        rd_kafka_topic_partition_list_add(list, c->k->topic, (int32_t)p)->offset = t->commit_next;
        t->dirty = false;
    }
    pthread_mutex_unlock(&c->lock);
    if (list->cnt) {
        rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, list, sync ? 0 : 1);
        if (err) {
            atomic_fetch_add_explicit(&c->commit_errors, 1, memory_order_relaxed);
            LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka consumer %s: commit failed: %s (redelivered after a restart)",
                            c->name, rd_kafka_err2str(err));
        } else {
            atomic_fetch_add_explicit(&c->commits, 1, memory_order_relaxed);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void maybe_commit(kafka_consumer *c)
{
    int64_t now = clock_mono_ms();
    if (now - c->last_commit_ms < COMMIT_INTERVAL_MS) return;
    c->last_commit_ms = now;
    commit_dirty(c, NULL, false);
}

static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_consumer *c = opaque;
    report_error(c->k, rk, err, reason);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    kafka_consumer *c = opaque;
    if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    atomic_fetch_add_explicit(&c->commit_errors, 1, memory_order_relaxed);
    LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka consumer %s: commit failed: %s; retrying", c->name,
                    rd_kafka_err2str(err));
    /* try again with the next commit, unless the point moved on meanwhile */
    pthread_mutex_lock(&c->lock);
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        part_track *t = track_of(c, offsets->elems[i].partition);
        if (t && t->assigned && t->commit_next == offsets->elems[i].offset) t->dirty = true;
    }
    pthread_mutex_unlock(&c->lock);
}

static void describe(const rd_kafka_topic_partition_list_t *parts, char *out, size_t len)
{
    size_t pos = 0;
    out[0] = '\0';
    for (int i = 0; i < parts->cnt && pos + 12 < len; i++)
        pos += (size_t)snprintf(out + pos, len - pos, "%s%d", i ? "," : "", parts->elems[i].partition);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_consumer *c = opaque;
    bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    char which[256];
    describe(parts, which, sizeof which);
    atomic_fetch_add_explicit(&c->rebalances, 1, memory_order_relaxed);
    rd_kafka_error_t *error = NULL;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < parts->cnt; i++) {
            part_track *t = track_of(c, parts->elems[i].partition);
            if (t) track_reset(t, true);
        }
        pthread_mutex_unlock(&c->lock);
        LOG_INFO(MOD, "kafka consumer %s: assigned partitions [%s]", c->name, which);
        if (cooperative) error = rd_kafka_incremental_assign(rk, parts);
        else rd_kafka_assign(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* what is done is committed now; what is not is redelivered to the next owner */
        if (!rd_kafka_assignment_lost(rk)) commit_dirty(c, parts, true);
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < parts->cnt; i++) {
            part_track *t = track_of(c, parts->elems[i].partition);
            if (t) track_reset(t, false);
        }
        pthread_mutex_unlock(&c->lock);
        LOG_INFO(MOD, "kafka consumer %s: revoked partitions [%s]", c->name, which);
        if (cooperative) error = rd_kafka_incremental_unassign(rk, parts);
        else rd_kafka_assign(rk, NULL);
    } else {
        LOG_ERROR(MOD, "kafka consumer %s: rebalance failed: %s", c->name, rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
    if (error) {
        LOG_ERROR(MOD, "kafka consumer %s: (un)assign [%s]: %s", c->name, which, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

static int kb_add_group(bus *bb, const char *name, uint32_t consumers)
{
    kafka_bus *k = K(bb);
    if (k->group_count == MAX_GROUPS || consumers == 0 || consumers > 1024 || strlen(name) >= sizeof k->groups[0].name)
        return -EINVAL;
    for (uint32_t i = 0; i < k->group_count; i++)
        if (!strcmp(k->groups[i].name, name)) return -EEXIST;
    kgroup *g = &k->groups[k->group_count];
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->kafka_id, sizeof g->kafka_id, "%s%s", k->group_prefix, name);
    g->consumers = consumers;
    k->group_count++;
    return 0;
}

static kgroup *find_group(kafka_bus *k, const char *name)
{
    for (uint32_t i = 0; i < k->group_count; i++)
        if (!strcmp(k->groups[i].name, name)) return &k->groups[i];
    return NULL;
}

static int kb_consumer_open(bus *bb, const char *name, uint32_t index, bus_consumer **out)
{
    kafka_bus *k = K(bb);
    kgroup *g = find_group(k, name);
    if (!g) return -ENOENT;
    if (index >= g->consumers) return -EINVAL;
    pthread_mutex_lock(&k->consumers_lock);
    for (uint32_t i = 0; i < k->consumer_count; i++)
        if (k->consumers[i]->group == g && k->consumers[i]->index == index) {
            pthread_mutex_unlock(&k->consumers_lock);
            return -EBUSY;
        }
    bool full = k->consumer_count == MAX_CONSUMERS;
    pthread_mutex_unlock(&k->consumers_lock);
    if (full) return -ENOSPC;

    kafka_consumer *c = mamori_xcalloc(1, sizeof *c);
    c->base.owner = bb;
    c->k = k;
    c->group = g;
    c->index = index;
    snprintf(c->name, sizeof c->name, "%s/%u", g->kafka_id, index);
    pthread_mutex_init(&c->lock, NULL);
    char client_id[200];
    snprintf(client_id, sizeof client_id, "%s-%s-%u", k->client_id, g->name, index);
    rd_kafka_conf_t *conf = base_conf(k, client_id, c, on_consumer_error);
    if (!conf || conf_set(conf, "group.id", g->kafka_id, client_id) ||
        conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", client_id) ||
        conf_set(conf, "enable.auto.commit", "false", client_id) ||
        conf_set(conf, "enable.auto.offset.store", "false", client_id) ||
        conf_set(conf, "auto.offset.reset", "earliest", client_id) ||
        conf_set(conf, "enable.partition.eof", "false", client_id) ||
        conf_set(conf, "session.timeout.ms", SESSION_TIMEOUT_MS, client_id) ||
        conf_set(conf, "queued.max.messages.kbytes", CONSUMER_PREFETCH_KIB, client_id)) {
        if (conf) rd_kafka_conf_destroy(conf);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -EINVAL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    char errstr[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        LOG_ERROR(MOD, "kafka consumer %s: %s", c->name, errstr);
        rd_kafka_conf_destroy(conf);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -EINVAL;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, k->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        LOG_ERROR(MOD, "kafka consumer %s: subscribe %s: %s", c->name, k->topic, rd_kafka_err2str(err));
        rd_kafka_destroy(c->rk);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -EIO;
    }
    kafka_decoder_init(&c->dec, k->opt.max_batch_events, k->opt.max_batch_bytes, k->opt.max_past_us, k->opt.max_future_us);
    c->last_commit_ms = clock_mono_ms();
    pthread_mutex_lock(&k->consumers_lock);
    k->consumers[k->consumer_count++] = c;
    pthread_mutex_unlock(&k->consumers_lock);
    *out = &c->base;
    return 0;
}

/* One message to one batch (NULL if it is not a valid batch: counted, logged, marked done). */
static bus_batch *take_message(kafka_consumer *c, rd_kafka_message_t *m)
{
    kafka_message view = {.key = m->key, .key_len = m->key_len, .value = m->payload, .value_len = m->len,
                          .offset = m->offset};
    rd_kafka_timestamp_type_t tstype;
    int64_t ts_ms = rd_kafka_message_timestamp(m, &tstype);
    view.timestamp_us = ts_ms > 0 ? ts_ms * 1000 : 0;
    char why[256] = "";
    int rc = 0;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
            if (strncmp(name, "mamori.", 7) != 0) continue;
            if (view.header_count == KAFKA_HEADERS_MAX) {
                snprintf(why, sizeof why, "more than %u mamori.* headers", KAFKA_HEADERS_MAX);
                rc = -EINVAL;
                break;
            }
            view.headers[view.header_count++] = (kafka_header){name, value ? value : "", value ? size : 0};
        }
    }
    bus_batch *b = NULL;
    if (rc == 0) {
        b = bus_batch_create(CONSUMER_ARENA_CHUNK);
        rc = kafka_decode_batch(&c->dec, &view, b, why, sizeof why);
    }
    pthread_mutex_lock(&c->lock);
    part_track *t = track_of(c, m->partition);
    bool tracked = t && t->assigned;
    if (tracked) track_push(t, m->offset, rc != 0);
    uint32_t generation = t ? t->generation : 0;
    pthread_mutex_unlock(&c->lock);
    if (rc) {
        atomic_fetch_add_explicit(&c->invalid, 1, memory_order_relaxed);
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka consumer %s: topic %s partition %d offset %lld is not a batch, "
                        "skipped: %s", c->name, c->k->topic, m->partition, (long long)m->offset, why);
        bus_batch_destroy(b);
        return NULL;
    }
    b->partition = (uint32_t)m->partition;
    b->offset = m->offset;
    b->assignment = generation;
    b->accounted_bytes = b->arena.bytes_reserved + sizeof *b;
    atomic_fetch_add_explicit(&c->consumed, 1, memory_order_relaxed);
    atomic_fetch_add(&c->outstanding_batches, 1);
    atomic_fetch_add(&c->outstanding_bytes, b->accounted_bytes);
    return b;
}

/* Offsets of every partition in list, in one request: the end (RD_KAFKA_OFFSET_END, the high
 * watermark) or the beginning (RD_KAFKA_OFFSET_BEGINNING). A partition that could not be
 * asked gets offset -1. */
static int list_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list, int64_t which, int timeout_ms)
{
    for (int i = 0; i < list->cnt; i++) list->elems[i].offset = which; /* ListOffsets: -1 latest, -2 earliest */
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list, timeout_ms);
    for (int i = 0; i < list->cnt; i++)
        if (err || list->elems[i].err) list->elems[i].offset = -1;
    return err ? -EIO : 0;
}

/* At shutdown: the high watermark of every assigned partition is where this consumer stops. */
static void drain_begin(kafka_consumer *c, int64_t deadline_ms)
{
    c->draining = true;
    c->drain_deadline_ms = deadline_ms;
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(c->rk, &assigned) || !assigned) return;
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(assigned);
    rd_kafka_topic_partition_list_t *low = rd_kafka_topic_partition_list_copy(assigned);
    bool have_committed = assigned->cnt && rd_kafka_committed(c->rk, committed, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (assigned->cnt) {
        (void)list_offsets(c->rk, low, RD_KAFKA_OFFSET_BEGINNING, 2000);
        (void)list_offsets(c->rk, assigned, RD_KAFKA_OFFSET_END, 2000);
    }
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < assigned->cnt; i++) {
        part_track *t = track_of(c, assigned->elems[i].partition);
        if (!t || !t->assigned) continue;
        t->drain_target = assigned->elems[i].offset;
        if (t->next_offset < 0) /* nothing consumed yet: it starts at the committed offset */
            t->next_offset = have_committed && committed->elems[i].offset >= 0 ? committed->elems[i].offset
                                                                                  : low->elems[i].offset;
    }
    pthread_mutex_unlock(&c->lock);
    rd_kafka_topic_partition_list_destroy(low);
    rd_kafka_topic_partition_list_destroy(committed);
    rd_kafka_topic_partition_list_destroy(assigned);
}

static bool drain_complete(kafka_consumer *c)
{
    if (clock_mono_ms() >= c->drain_deadline_ms) return true;
    bool done = true;
    pthread_mutex_lock(&c->lock);
    for (uint32_t p = 0; p < c->part_count && done; p++) {
        part_track *t = &c->parts[p];
        if (t->assigned && t->drain_target >= 0 && t->next_offset < t->drain_target) done = false;
    }
    pthread_mutex_unlock(&c->lock);
    return done;
}

static int kb_poll(bus_consumer *bc, bus_batch **out, size_t max, int timeout_ms)
{
    kafka_consumer *c = (kafka_consumer *)bc;
    kafka_bus *k = c->k;
    if (c->drained) return -ESHUTDOWN;
    int64_t drain_deadline_ms = atomic_load(&k->drain_deadline_ms); /* set once the producer flushed */
    if (drain_deadline_ms) {
        if (!c->draining) drain_begin(c, drain_deadline_ms);
        if (drain_complete(c)) {
            commit_dirty(c, NULL, true);
            c->drained = true;
            return -ESHUTDOWN;
        }
        if (timeout_ms > 50) timeout_ms = 50;
    }
    /* undone batches are bounded like the embedded bus's queues: stop taking more */
    if (atomic_load(&c->outstanding_batches) >= k->opt.max_inflight_batches ||
        atomic_load(&c->outstanding_bytes) >= k->opt.max_inflight_bytes) {
        maybe_commit(c);
        struct timespec ts = {0, (long)MAMORI_MIN(timeout_ms, 10) * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    size_t n = 0;
    int wait_ms = timeout_ms;
    while (n < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, wait_ms);
        wait_ms = 0;
        if (!m) break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka consumer %s: %s", c->name, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        bus_batch *b = take_message(c, m);
        rd_kafka_message_destroy(m);
        if (b) out[n++] = b;
        if (atomic_load(&c->outstanding_bytes) >= k->opt.max_inflight_bytes) break;
    }
    maybe_commit(c);
    return (int)n;
}

static void kb_done(bus_consumer *bc, bus_batch **batches, size_t n)
{
    kafka_consumer *c = (kafka_consumer *)bc;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        bus_batch *b = batches[i];
        part_track *t = track_of(c, (int32_t)b->partition);
        if (t && t->assigned && t->generation == b->assignment) track_done(t, b->offset);
    }
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_sub(&c->outstanding_batches, 1);
        atomic_fetch_sub(&c->outstanding_bytes, batches[i]->accounted_bytes);
        bus_batch_destroy(batches[i]);
    }
    maybe_commit(c);
}

static void kb_consumer_close(bus_consumer *bc)
{
    kafka_consumer *c = (kafka_consumer *)bc;
    kafka_bus *k = c->k;
    commit_dirty(c, NULL, true);
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
    if (err) LOG_WARN(MOD, "kafka consumer %s: close: %s", c->name, rd_kafka_err2str(err));
    pthread_mutex_lock(&k->consumers_lock);
    for (uint32_t i = 0; i < k->consumer_count; i++)
        if (k->consumers[i] == c) {
            k->consumers[i] = k->consumers[--k->consumer_count];
            break;
        }
    pthread_mutex_unlock(&k->consumers_lock);
    rd_kafka_destroy(c->rk);
    kafka_decoder_fini(&c->dec);
    for (uint32_t p = 0; p < c->part_count; p++) {
        free(c->parts[p].offsets);
        free(c->parts[p].done);
    }
    free(c->parts);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---- catching up, shutdown, stats ---- */

static int kb_wait_caught_up(bus *bb, const char *name, int timeout_ms)
{
    kafka_bus *k = K(bb);
    kgroup *g = find_group(k, name);
    if (!g) return -ENOENT;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    char client_id[200];
    snprintf(client_id, sizeof client_id, "%s-%s-monitor", k->client_id, g->name);
    rd_kafka_conf_t *conf = base_conf(k, client_id, k, on_error);
    if (!conf || conf_set(conf, "group.id", g->kafka_id, client_id)) {
        if (conf) rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        LOG_ERROR(MOD, "kafka %s: %s", client_id, errstr);
        return -EINVAL;
    }
    int rc = -ETIMEDOUT;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, k->topic, NULL);
    rd_kafka_topic_partition_list_t *list = NULL;
    int64_t *hi = NULL, *lo = NULL;
    if (rd_kafka_metadata(rk, 0, rkt, &md, MAMORI_MAX(timeout_ms, 1)) || md->topic_cnt != 1 || md->topics[0].err ||
        md->topics[0].partition_cnt == 0)
        goto out;
    int n = md->topics[0].partition_cnt;
    list = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(list, k->topic, md->topics[0].partitions[i].id);
    rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_copy(list);
    int remaining = (int)MAMORI_MAX(deadline - clock_mono_ms(), 1);
    int lrc = list_offsets(rk, list, RD_KAFKA_OFFSET_BEGINNING, remaining);
    remaining = (int)MAMORI_MAX(deadline - clock_mono_ms(), 1);
    if (lrc == 0) lrc = list_offsets(rk, ends, RD_KAFKA_OFFSET_END, remaining);
    hi = mamori_xcalloc((size_t)n, sizeof *hi);
    lo = mamori_xcalloc((size_t)n, sizeof *lo);
    for (int i = 0; i < n; i++) {
        lo[i] = list->elems[i].offset;
        hi[i] = ends->elems[i].offset;
        if (lo[i] < 0 || hi[i] < 0) lrc = -EIO;
    }
    rd_kafka_topic_partition_list_destroy(ends);
    if (lrc) goto out;
    for (;;) {
        remaining = (int)(deadline - clock_mono_ms());
        if (remaining <= 0) break;
        if (rd_kafka_committed(rk, list, remaining) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            bool caught_up = true;
            for (int i = 0; i < n && caught_up; i++) {
                int64_t at = list->elems[i].offset >= 0 ? list->elems[i].offset : lo[i];
                if (at < hi[i]) caught_up = false;
            }
            if (caught_up) {
                rc = 0;
                break;
            }
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
out:
    if (rc) {
        int64_t behind = 0;
        for (int i = 0; list && hi && i < list->cnt; i++)
            if (list->elems[i].offset >= 0 && hi[i] > list->elems[i].offset) behind += hi[i] - list->elems[i].offset;
        LOG_DEBUG(MOD, "kafka: group %s is catching up with %s (%lld messages behind%s)", g->kafka_id, k->topic,
                 (long long)behind, md ? "" : ", broker not answering");
    }
    free(hi);
    free(lo);
    if (list) rd_kafka_topic_partition_list_destroy(list);
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

static void kb_shutdown(bus *bb)
{
    kafka_bus *k = K(bb);
    if (atomic_exchange(&k->shutting_down, true)) return;
    int64_t start = clock_mono_ms();
    /* what ingest published is flushed to the broker (or reported failed: never acked) */
    if (rd_kafka_flush(k->producer, (int)k->opt.drain_timeout_ms) == RD_KAFKA_RESP_ERR__TIMED_OUT)
        LOG_WARN(MOD, "kafka: %d messages still unacknowledged by the broker after %u ms; their agents resend them",
                 rd_kafka_outq_len(k->producer), k->opt.drain_timeout_ms);
    int64_t left = (int64_t)k->opt.drain_timeout_ms - (clock_mono_ms() - start);
    atomic_store(&k->drain_deadline_ms, clock_mono_ms() + MAMORI_MAX(left, 1000));
}

static void kb_destroy(bus *bb)
{
    kafka_bus *k = K(bb);
    MAMORI_ASSERT(k->consumer_count == 0);
    if (k->poller_started) {
        atomic_store(&k->stop_poller, true);
        pthread_join(k->poller, NULL);
    }
    if (k->producer) {
        /* whatever never reached the broker will never be durable */
        rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(k->producer, 1000);
        while (atomic_load(&k->inflight_batches) > 0 && rd_kafka_poll(k->producer, 100) > 0) {
        }
        if (k->rkt) rd_kafka_topic_destroy(k->rkt);
        rd_kafka_destroy(k->producer);
    }
    pthread_mutex_destroy(&k->consumers_lock);
    free(k->bootstrap);
    free(k->topic);
    free(k->group_prefix);
    free(k->client_id);
    free(k->compression);
    free(k);
}

/* Messages in the topic not yet done by this consumer's assigned partitions (from the cached
 * high watermarks: no broker round trip). */
static uint64_t consumer_lag(kafka_consumer *c)
{
    uint64_t lag = 0;
    pthread_mutex_lock(&c->lock);
    for (uint32_t p = 0; p < c->part_count; p++) {
        part_track *t = &c->parts[p];
        if (!t->assigned) continue;
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(c->rk, c->k->topic, (int32_t)p, &lo, &hi) || hi < 0) continue;
        int64_t at = t->commit_next >= 0 ? t->commit_next : t->count ? t->offsets[t->head] : t->next_offset;
        if (at >= 0 && hi > at) lag += (uint64_t)(hi - at);
    }
    pthread_mutex_unlock(&c->lock);
    return lag;
}

static void kb_get_stats(bus *bb, bus_stats *out)
{
    kafka_bus *k = K(bb);
    memset(out, 0, sizeof *out);
    out->published = atomic_load(&k->published);
    out->refused = atomic_load(&k->refused);
    out->inflight_bytes = atomic_load(&k->inflight_bytes);
    out->inflight_batches = atomic_load(&k->inflight_batches);
    pthread_mutex_lock(&k->consumers_lock);
    for (uint32_t i = 0; i < k->consumer_count; i++) out->queued_batches += consumer_lag(k->consumers[i]);
    pthread_mutex_unlock(&k->consumers_lock);
}

static void kb_write_metrics(bus *bb, buf *out)
{
    kafka_bus *k = K(bb);
    buf_printf(out,
               "# HELP mamori_bus_kafka_published_total Batches handed to the Kafka producer.\n"
               "# TYPE mamori_bus_kafka_published_total counter\nmamori_bus_kafka_published_total %llu\n"
               "# HELP mamori_bus_kafka_refused_total Publishes refused for backpressure (budget, queue, broker).\n"
               "# TYPE mamori_bus_kafka_refused_total counter\nmamori_bus_kafka_refused_total %llu\n"
               "# HELP mamori_bus_kafka_delivered_total Batches acknowledged by the broker (acks=all).\n"
               "# TYPE mamori_bus_kafka_delivered_total counter\nmamori_bus_kafka_delivered_total %llu\n"
               "# HELP mamori_bus_kafka_delivery_errors_total Batches that could not be delivered (agents resend).\n"
               "# TYPE mamori_bus_kafka_delivery_errors_total counter\nmamori_bus_kafka_delivery_errors_total %llu\n"
               "# HELP mamori_bus_kafka_broker_errors_total Client-level errors (broker down, transport).\n"
               "# TYPE mamori_bus_kafka_broker_errors_total counter\nmamori_bus_kafka_broker_errors_total %llu\n"
               "# HELP mamori_bus_kafka_inflight_batches Batches published and not yet acknowledged.\n"
               "# TYPE mamori_bus_kafka_inflight_batches gauge\nmamori_bus_kafka_inflight_batches %llu\n"
               "# HELP mamori_bus_kafka_inflight_bytes Memory of those batches.\n"
               "# TYPE mamori_bus_kafka_inflight_bytes gauge\nmamori_bus_kafka_inflight_bytes %llu\n"
               "# HELP mamori_bus_kafka_fatal 1 after a fatal producer error (publishing stopped).\n"
               "# TYPE mamori_bus_kafka_fatal gauge\nmamori_bus_kafka_fatal %d\n",
               (unsigned long long)atomic_load(&k->published), (unsigned long long)atomic_load(&k->refused),
               (unsigned long long)atomic_load(&k->delivered), (unsigned long long)atomic_load(&k->delivery_errors),
               (unsigned long long)atomic_load(&k->broker_errors), (unsigned long long)atomic_load(&k->inflight_batches),
               (unsigned long long)atomic_load(&k->inflight_bytes), atomic_load(&k->fatal) ? 1 : 0);
    static const char *const names[] = {"consumer_lag_messages", "consumed_total", "invalid_messages_total",
                                        "commits_total", "commit_errors_total", "rebalances_total"};
    static const char *const help[] = {
        "Messages of the assigned partitions not yet done (from cached high watermarks).",
        "Batches taken from Kafka.", "Messages that were not a valid batch (skipped, logged).",
        "Offset commits.", "Failed offset commits (retried; a crash meanwhile only redelivers).",
        "Partition assignments and revocations."};
    pthread_mutex_lock(&k->consumers_lock);
    for (size_t m = 0; m < MAMORI_ARRAY_LEN(names); m++) {
        buf_printf(out, "# HELP mamori_bus_kafka_%s %s\n# TYPE mamori_bus_kafka_%s %s\n", names[m], help[m], names[m],
                   m == 0 ? "gauge" : "counter");
        for (uint32_t i = 0; i < k->consumer_count; i++) {
            kafka_consumer *c = k->consumers[i];
            uint64_t v = m == 0   ? consumer_lag(c)
                         : m == 1 ? atomic_load(&c->consumed)
                         : m == 2 ? atomic_load(&c->invalid)
                         : m == 3 ? atomic_load(&c->commits)
                         : m == 4 ? atomic_load(&c->commit_errors)
                                  : atomic_load(&c->rebalances);
            buf_printf(out, "mamori_bus_kafka_%s{group=\"%s\",consumer=\"%u\"} %llu\n", names[m], c->group->kafka_id,
                       c->index, (unsigned long long)v);
        }
    }
    pthread_mutex_unlock(&k->consumers_lock);
}

static const struct bus_ops kafka_ops = {
    .add_group = kb_add_group,
    .publish = kb_publish,
    .on_wakeup = kb_on_wakeup,
    .consumer_open = kb_consumer_open,
    .poll = kb_poll,
    .done = kb_done,
    .consumer_close = kb_consumer_close,
    .shutdown = kb_shutdown,
    .destroy = kb_destroy,
    .get_stats = kb_get_stats,
    .wait_caught_up = kb_wait_caught_up,
    .write_metrics = kb_write_metrics,
};

/* Creates the topic unless it exists. A broker that does not answer is only logged. */
static void ensure_topic(kafka_bus *k)
{
    char errstr[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(k->topic, (int)k->opt.partitions,
                                                    k->opt.replication_factor ? (int)k->opt.replication_factor : -1,
                                                    errstr, sizeof errstr);
    if (!nt) {
        LOG_ERROR(MOD, "kafka: topic %s: %s", k->topic, errstr);
        return;
    }
    (void)rd_kafka_NewTopic_set_config(nt, "max.message.bytes", k->max_message_bytes);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->producer);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(k->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    (void)rd_kafka_AdminOptions_set_request_timeout(ao, ADMIN_TIMEOUT_MS, errstr, sizeof errstr);
    (void)rd_kafka_AdminOptions_set_operation_timeout(ao, ADMIN_TIMEOUT_MS, errstr, sizeof errstr);
    rd_kafka_CreateTopics(k->producer, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 2000);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    size_t cnt = 0;
    const rd_kafka_topic_result_t **topics = res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
    if (!ev || rd_kafka_event_error(ev) || cnt != 1) {
        LOG_WARN(MOD, "kafka: cannot make sure topic %s exists (%s); going on: the broker creates it or it is waited for",
                 k->topic, ev ? rd_kafka_event_error_string(ev) : "no answer");
    } else {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(topics[0]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            LOG_INFO(MOD, "kafka: created topic %s partitions=%u max.message.bytes=%s", k->topic, k->opt.partitions,
                     k->max_message_bytes);
        else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            LOG_WARN(MOD, "kafka: creating topic %s: %s", k->topic, rd_kafka_topic_result_error_string(topics[0]));
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

int bus_kafka_create(const bus_kafka_options *opt, bus **out)
{
    if (!opt->bootstrap || !*opt->bootstrap || !opt->topic || !*opt->topic || !opt->max_inflight_batches ||
        !opt->max_inflight_bytes || !opt->partitions || !opt->max_batch_events || !opt->max_batch_bytes)
        return -EINVAL;
    kafka_bus *k = mamori_xcalloc(1, sizeof *k);
    k->base.ops = &kafka_ops;
    k->opt = *opt;
    k->bootstrap = mamori_xstrdup(opt->bootstrap);
    k->topic = mamori_xstrdup(opt->topic);
    k->group_prefix = mamori_xstrdup(opt->group_prefix ? opt->group_prefix : "");
    k->client_id = mamori_xstrdup(opt->client_id ? opt->client_id : "mamorid");
    k->compression = mamori_xstrdup(opt->compression ? opt->compression : "lz4");
    pthread_mutex_init(&k->consumers_lock, NULL);
    /* a message is at most one batch's NDJSON plus headers; the value can be a little larger
     * than the agent's payload (normalization adds the mamori.* fields) */
    uint64_t max_message = MAMORI_MIN((uint64_t)opt->max_batch_bytes * 2 + 1024 * 1024, 1000000000ull);
    snprintf(k->max_message_bytes, sizeof k->max_message_bytes, "%llu", (unsigned long long)max_message);
    char queue_messages[24], queue_kib[24], linger[24], client_id[200];
    snprintf(queue_messages, sizeof queue_messages, "%u", opt->max_inflight_batches + 16);
    snprintf(queue_kib, sizeof queue_kib, "%llu",
             (unsigned long long)MAMORI_MIN(opt->max_inflight_bytes / 1024 * 2 + max_message / 1024, 2097151ull));
    snprintf(linger, sizeof linger, "%u", opt->linger_ms);
    snprintf(client_id, sizeof client_id, "%s-producer", k->client_id);
    rd_kafka_conf_t *conf = base_conf(k, client_id, k, on_error);
    if (!conf || conf_set(conf, "enable.idempotence", "true", client_id) || conf_set(conf, "acks", "all", client_id) ||
        conf_set(conf, "enable.gapless.guarantee", "true", client_id) ||
        conf_set(conf, "message.timeout.ms", "0", client_id) || /* never give up: backpressure instead */
        conf_set(conf, "compression.codec", k->compression, client_id) ||
        conf_set(conf, "linger.ms", linger, client_id) ||
        conf_set(conf, "partitioner", "murmur2_random", client_id) || /* what Java producers do with a key */
        conf_set(conf, "message.max.bytes", k->max_message_bytes, client_id) ||
        conf_set(conf, "queue.buffering.max.messages", queue_messages, client_id) ||
        conf_set(conf, "queue.buffering.max.kbytes", queue_kib, client_id)) {
        if (conf) rd_kafka_conf_destroy(conf);
        kb_destroy(&k->base);
        return -EINVAL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char errstr[512];
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!k->producer) {
        LOG_ERROR(MOD, "kafka producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        kb_destroy(&k->base);
        return -EINVAL;
    }
    ensure_topic(k);
    k->rkt = rd_kafka_topic_new(k->producer, k->topic, NULL);
    int rc = pthread_create(&k->poller, NULL, poller_main, k);
    if (rc) {
        kb_destroy(&k->base);
        return -rc;
    }
    k->poller_started = true;
    LOG_INFO(MOD, "kafka bus bootstrap=%s topic=%s groups=%s* compression=%s", k->bootstrap, k->topic,
             k->group_prefix, k->compression);
    *out = &k->base;
    return 0;
}
