/* bus/kafka.c — the bus on Apache Kafka (librdkafka), docs/kafka.md: the bus object and its
 * producer. Publishing encodes a batch as one message (bus/kafka_codec.c) and hands it to an
 * idempotent producer (acks=all, no local timeout, gapless): the delivery report, served by
 * the "kafka-producer" thread, is what makes the batch durable. Refusing a publish (-EAGAIN)
 * is the only reaction to a slow or absent broker: nothing is dropped, ingest stops reading
 * its agents. The consumers are in kafka_consumer.c. */
#include "kafka_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "bus"

/* ---- librdkafka configuration and callbacks shared by producer and consumers ---- */

int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *who)
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

void kafka_report_error(kafka_bus *k, rd_kafka_t *rk, int err, const char *reason)
{
    atomic_fetch_add_explicit(&k->broker_errors, 1, memory_order_relaxed);
    LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka %s: %s: %s", rd_kafka_name(rk),
                    rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

void kafka_on_client_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_report_error(opaque, rk, err, reason);
}

/* A fatal producer error (e.g. the broker fenced the idempotent producer, or a failure that
 * could leave a gap): the poller thread replaces the producer (recover_producer). */
static void on_producer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_bus *k = opaque;
    if (err != RD_KAFKA_RESP_ERR__FATAL) {
        kafka_report_error(k, rk, err, reason);
        return;
    }
    char why[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
    atomic_store(&k->fatal, true);
    LOG_ERROR(MOD, "kafka %s: fatal error %s: %s; what it holds is failed (agents resend) and a new producer "
              "replaces it", rd_kafka_name(rk), rd_kafka_err2name(orig), why);
}


rd_kafka_conf_t *kafka_conf_new(kafka_bus *k, const char *client_id, void *opaque,
                                void (*error_cb)(rd_kafka_t *, int, const char *, void *))
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (kafka_conf_set(conf, "bootstrap.servers", k->bootstrap, client_id) ||
        kafka_conf_set(conf, "client.id", client_id, client_id) ||
        kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "10000", client_id)) {
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

static rd_kafka_t *new_producer(kafka_bus *k)
{
    char client_id[200];
    snprintf(client_id, sizeof client_id, "%s-producer", k->client_id);
    rd_kafka_conf_t *conf = kafka_conf_new(k, client_id, k, on_producer_error);
    if (!conf || kafka_conf_set(conf, "enable.idempotence", "true", client_id) ||
        kafka_conf_set(conf, "acks", "all", client_id) ||
        kafka_conf_set(conf, "enable.gapless.guarantee", "true", client_id) ||
        kafka_conf_set(conf, "message.timeout.ms", "0", client_id) || /* never give up: backpressure instead */
        kafka_conf_set(conf, "compression.codec", k->compression, client_id) ||
        kafka_conf_set(conf, "linger.ms", k->conf_linger_ms, client_id) ||
        kafka_conf_set(conf, "partitioner", "murmur2_random", client_id) || /* what Java producers do with a key */
        kafka_conf_set(conf, "message.max.bytes", k->max_message_bytes, client_id) ||
        kafka_conf_set(conf, "queue.buffering.max.messages", k->conf_queue_messages, client_id) ||
        kafka_conf_set(conf, "queue.buffering.max.kbytes", k->conf_queue_kib, client_id)) {
        if (conf) rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        LOG_ERROR(MOD, "kafka producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* After a fatal error: every message the old producer holds is failed (its agents get
 * CLOSE and resend it), then a new producer takes its place. Publishers wait meanwhile
 * (-EAGAIN), and are woken when it is in. */
static void recover_producer(kafka_bus *k)
{
    rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    /* Every failure must be reported before a new producer publishes anything: a later batch
     * of an agent acked while an earlier one is unaccounted for would ack the earlier one. */
    int64_t next_log_ms = clock_mono_ms() + 10000;
    while (atomic_load(&k->inflight_batches) > 0) {
        rd_kafka_poll(k->producer, 100);
        if (atomic_load(&k->stop_poller)) return;
        if (clock_mono_ms() >= next_log_ms) {
            LOG_ERROR(MOD, "kafka: %llu batches of the failed producer not reported yet; publishing waits",
                      (unsigned long long)atomic_load(&k->inflight_batches));
            next_log_ms += 10000;
        }
    }
    rd_kafka_t *fresh = new_producer(k);
    if (!fresh) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL); /* try again on the next pass */
        return;
    }
    pthread_rwlock_wrlock(&k->producer_lock);
    rd_kafka_t *old = k->producer;
    rd_kafka_topic_t *old_rkt = k->rkt;
    k->producer = fresh;
    k->rkt = rd_kafka_topic_new(fresh, k->topic, NULL);
    atomic_store(&k->fatal, false);
    pthread_rwlock_unlock(&k->producer_lock);
    rd_kafka_topic_destroy(old_rkt);
    rd_kafka_destroy(old);
    atomic_fetch_add(&k->producer_restarts, 1);
    LOG_WARN(MOD, "kafka: producer replaced after a fatal error (%llu so far)",
             (unsigned long long)atomic_load(&k->producer_restarts));
    atomic_store(&k->publisher_blocked, false);
    fire_wakeups(k);
}

static void *poller_main(void *arg)
{
    kafka_bus *k = arg;
    pthread_setname_np(pthread_self(), "kafka-producer");
    while (!atomic_load(&k->stop_poller)) {
        rd_kafka_poll(k->producer, 100); /* only this thread replaces the producer */
        if (atomic_load(&k->fatal) && !atomic_load(&k->shutting_down)) recover_producer(k);
    }
    return NULL;
}

int kafka_test_fatal_error(bus *b)
{
    kafka_bus *k = kafka_of(b);
    pthread_rwlock_rdlock(&k->producer_lock);
    rd_kafka_resp_err_t err = rd_kafka_test_fatal_error(k->producer, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                                        "test");
    pthread_rwlock_unlock(&k->producer_lock);
    return err ? -EALREADY : 0;
}

static int kb_publish(bus *bb, bus_batch *batch)
{
    kafka_bus *k = kafka_of(bb);
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
    pthread_rwlock_rdlock(&k->producer_lock);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        k->producer, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_MSGFLAGS(0),
        RD_KAFKA_V_KEY((void *)msg->key, msg->key_len), RD_KAFKA_V_VALUE((void *)msg->value, msg->value_len),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(batch), RD_KAFKA_V_END);
    pthread_rwlock_unlock(&k->producer_lock);
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
    kafka_bus *k = kafka_of(bb);
    unsigned n = atomic_load(&k->wakeup_count);
    if (n == KAFKA_MAX_WAKEUPS) return -ENOSPC;
    k->wakeups[n].fn = fn;
    k->wakeups[n].ctx = ctx;
    atomic_store(&k->wakeup_count, n + 1);
    return 0;
}

/* ---- shutdown, stats ---- */

static void kb_shutdown(bus *bb)
{
    kafka_bus *k = kafka_of(bb);
    if (atomic_exchange(&k->shutting_down, true)) return;
    int64_t start = clock_mono_ms();
    /* what ingest published is flushed to the broker (or reported failed: never acked) */
    pthread_rwlock_rdlock(&k->producer_lock);
    if (rd_kafka_flush(k->producer, (int)k->opt.drain_timeout_ms) == RD_KAFKA_RESP_ERR__TIMED_OUT)
        LOG_WARN(MOD, "kafka: %d messages still unacknowledged by the broker after %u ms; their agents resend them",
                 rd_kafka_outq_len(k->producer), k->opt.drain_timeout_ms);
    pthread_rwlock_unlock(&k->producer_lock);
    int64_t left = (int64_t)k->opt.drain_timeout_ms - (clock_mono_ms() - start);
    atomic_store(&k->drain_deadline_ms, clock_mono_ms() + MAMORI_MAX(left, 1000));
}

static void kb_destroy(bus *bb)
{
    kafka_bus *k = kafka_of(bb);
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
    if (k->records_producer) { /* every send waited for its reports: nothing is in flight */
        rd_kafka_flush(k->records_producer, 1000);
        rd_kafka_destroy(k->records_producer);
    }
    pthread_mutex_destroy(&k->records_lock);
    pthread_mutex_destroy(&k->consumers_lock);
    pthread_rwlock_destroy(&k->producer_lock);
    free(k->bootstrap);
    free(k->topic);
    free(k->group_prefix);
    free(k->client_id);
    free(k->compression);
    free(k->instance_id);
    free(k);
}


static void kb_get_stats(bus *bb, bus_stats *out)
{
    kafka_bus *k = kafka_of(bb);
    memset(out, 0, sizeof *out);
    out->published = atomic_load(&k->published);
    out->refused = atomic_load(&k->refused);
    out->inflight_bytes = atomic_load(&k->inflight_bytes);
    out->inflight_batches = atomic_load(&k->inflight_batches);
    pthread_mutex_lock(&k->consumers_lock);
    for (uint32_t i = 0; i < k->consumer_count; i++) {
        uint32_t assigned, unknown;
        out->queued_batches += kafka_consumer_lag(k->consumers[i], &assigned, &unknown);
    }
    pthread_mutex_unlock(&k->consumers_lock);
}

static void kb_write_metrics(bus *bb, buf *out)
{
    kafka_bus *k = kafka_of(bb);
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
               "# HELP mamori_bus_kafka_fatal 1 while a fatal producer error is being recovered from.\n"
               "# TYPE mamori_bus_kafka_fatal gauge\nmamori_bus_kafka_fatal %d\n"
               "# HELP mamori_bus_kafka_producer_restarts_total Producers replaced after a fatal error.\n"
               "# TYPE mamori_bus_kafka_producer_restarts_total counter\nmamori_bus_kafka_producer_restarts_total %llu\n",
               (unsigned long long)atomic_load(&k->published), (unsigned long long)atomic_load(&k->refused),
               (unsigned long long)atomic_load(&k->delivered), (unsigned long long)atomic_load(&k->delivery_errors),
               (unsigned long long)atomic_load(&k->broker_errors), (unsigned long long)atomic_load(&k->inflight_batches),
               (unsigned long long)atomic_load(&k->inflight_bytes), atomic_load(&k->fatal) ? 1 : 0,
               (unsigned long long)atomic_load(&k->producer_restarts));
    static const char *const names[] = {"consumer_lag_messages", "assigned_partitions",
                                        "consumer_lag_unknown_partitions", "consumed_total",
                                        "invalid_messages_total", "reread_failures_total", "commits_total",
                                        "commit_errors_total", "rebalances_total"};
    static const char *const help[] = {
        "Messages of the assigned partitions not yet done (from cached high watermarks).",
        "Partitions of the topic assigned to this consumer (0: none, e.g. while the group rebalances).",
        "Assigned partitions whose end offset is not known yet (their lag is not in the lag gauge).",
        "Batches taken from Kafka.", "Messages that were not a valid batch (skipped, logged).",
        "Events written by Mamori that did not normalize again (acked but not stored: a bug).",
        "Offset commits.", "Failed offset commits (retried; a crash meanwhile only redelivers).",
        "Partition assignments and revocations."};
    _Static_assert(MAMORI_ARRAY_LEN(names) == MAMORI_ARRAY_LEN(help), "one help text per metric");
    pthread_mutex_lock(&k->consumers_lock);
    for (size_t m = 0; m < MAMORI_ARRAY_LEN(names); m++) {
        buf_printf(out, "# HELP mamori_bus_kafka_%s %s\n# TYPE mamori_bus_kafka_%s %s\n", names[m], help[m], names[m],
                   m <= 2 ? "gauge" : "counter");
        for (uint32_t i = 0; i < k->consumer_count; i++) {
            kafka_consumer *c = k->consumers[i];
            uint32_t assigned = 0, unknown = 0;
            uint64_t lag = m <= 2 ? kafka_consumer_lag(c, &assigned, &unknown) : 0;
            uint64_t v = m == 0   ? lag
                         : m == 1 ? assigned
                         : m == 2 ? unknown
                         : m == 3 ? atomic_load(&c->consumed)
                         : m == 4 ? atomic_load(&c->invalid)
                         : m == 5 ? atomic_load(&c->reread_failures)
                         : m == 6 ? atomic_load(&c->commits)
                         : m == 7 ? atomic_load(&c->commit_errors)
                                  : atomic_load(&c->rebalances);
            buf_printf(out, "mamori_bus_kafka_%s{group=\"%s\",consumer=\"%u\"} %llu\n", names[m], c->group->kafka_id,
                       c->index, (unsigned long long)v);
        }
    }
    pthread_mutex_unlock(&k->consumers_lock);
}

static const struct bus_ops kafka_ops = {
    .add_group = kafka_add_group,
    .publish = kb_publish,
    .on_wakeup = kb_on_wakeup,
    .consumer_open = kafka_consumer_open,
    .poll = kafka_poll,
    .done = kafka_done,
    .abandon = kafka_abandon,
    .send_records = kafka_send_records,
    .records_open = kafka_records_open,
    .durable_on_publish = true,
    .consumer_close = kafka_consumer_close,
    .shutdown = kb_shutdown,
    .destroy = kb_destroy,
    .get_stats = kb_get_stats,
    .wait_caught_up = kafka_wait_caught_up,
    .write_metrics = kb_write_metrics,
};

void kafka_ensure_topic(kafka_bus *k)
{
    kafka_ensure_topic_named(k, k->topic);
    if (k->alerts_topic[0]) kafka_ensure_topic_named(k, k->alerts_topic);
    if (k->matches_topic[0]) kafka_ensure_topic_named(k, k->matches_topic);
}

void kafka_ensure_topic_named(kafka_bus *k, const char *topic)
{
    if (!k->opt.partitions) return;
    char errstr[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, (int)k->opt.partitions,
                                                    k->opt.replication_factor ? (int)k->opt.replication_factor : -1,
                                                    errstr, sizeof errstr);
    if (!nt) {
        LOG_ERROR(MOD, "kafka: topic %s: %s", topic, errstr);
        return;
    }
    (void)rd_kafka_NewTopic_set_config(nt, "max.message.bytes", k->max_message_bytes);
    pthread_rwlock_rdlock(&k->producer_lock);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->producer);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(k->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    (void)rd_kafka_AdminOptions_set_request_timeout(ao, KAFKA_ADMIN_TIMEOUT_MS, errstr, sizeof errstr);
    (void)rd_kafka_AdminOptions_set_operation_timeout(ao, KAFKA_ADMIN_TIMEOUT_MS, errstr, sizeof errstr);
    rd_kafka_CreateTopics(k->producer, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, KAFKA_ADMIN_TIMEOUT_MS + 2000);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    size_t cnt = 0;
    const rd_kafka_topic_result_t **topics = res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
    if (!ev || rd_kafka_event_error(ev) || cnt != 1) {
        LOG_WARN(MOD, "kafka: cannot make sure topic %s exists (%s); going on: the broker creates it or it is waited for",
                 topic, ev ? rd_kafka_event_error_string(ev) : "no answer");
    } else {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(topics[0]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            LOG_INFO(MOD, "kafka: created topic %s partitions=%u max.message.bytes=%s", topic, k->opt.partitions,
                     k->max_message_bytes);
        else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            LOG_WARN(MOD, "kafka: creating topic %s: %s", topic, rd_kafka_topic_result_error_string(topics[0]));
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    pthread_rwlock_unlock(&k->producer_lock);
    rd_kafka_NewTopic_destroy(nt);
}

int bus_kafka_create(const bus_kafka_options *opt, bus **out)
{
    if (!opt->bootstrap || !*opt->bootstrap || !opt->topic || !*opt->topic || !opt->max_inflight_batches ||
        !opt->max_inflight_bytes || !opt->max_batch_events || !opt->max_batch_bytes)
        return -EINVAL;
    kafka_bus *k = mamori_xcalloc(1, sizeof *k);
    k->base.ops = &kafka_ops;
    k->opt = *opt;
    k->bootstrap = mamori_xstrdup(opt->bootstrap);
    k->topic = mamori_xstrdup(opt->topic);
    k->group_prefix = mamori_xstrdup(opt->group_prefix ? opt->group_prefix : "");
    k->client_id = mamori_xstrdup(opt->client_id ? opt->client_id : "mamorid");
    k->compression = mamori_xstrdup(opt->compression ? opt->compression : "lz4");
    k->instance_id = mamori_xstrdup(opt->instance_id ? opt->instance_id : "");
    snprintf(k->alerts_topic, sizeof k->alerts_topic, "%s", opt->alerts_topic ? opt->alerts_topic : "");
    snprintf(k->matches_topic, sizeof k->matches_topic, "%s", opt->matches_topic ? opt->matches_topic : "");
    pthread_mutex_init(&k->consumers_lock, NULL);
    pthread_mutex_init(&k->records_lock, NULL);
    pthread_rwlock_init(&k->producer_lock, NULL);
    /* A message is one batch's NDJSON plus headers. Normalized events can be larger than what
     * the agent sent: canonical form, and the mamori.* stamps (tenant, agent id, receive time,
     * host.id: under 512 bytes per event, plus 12 bytes of event keys). A message above this
     * could never be sent (its agent would wait forever), so the bound is generous. */
    uint64_t max_message = MAMORI_MIN((uint64_t)opt->max_batch_bytes * 2 + (uint64_t)opt->max_batch_events * 1024 +
                                          1024 * 1024,
                                      1000000000ull);
    snprintf(k->max_message_bytes, sizeof k->max_message_bytes, "%llu", (unsigned long long)max_message);
    k->max_message_value_bytes = (size_t)max_message;
    snprintf(k->conf_queue_messages, sizeof k->conf_queue_messages, "%u", opt->max_inflight_batches + 16);
    snprintf(k->conf_queue_kib, sizeof k->conf_queue_kib, "%llu",
             (unsigned long long)MAMORI_MIN(opt->max_inflight_bytes / 1024 * 2 + max_message / 1024, 2097151ull));
    snprintf(k->conf_linger_ms, sizeof k->conf_linger_ms, "%u", opt->linger_ms);
    k->producer = new_producer(k);
    if (!k->producer) {
        kb_destroy(&k->base);
        return -EINVAL;
    }
    if (opt->partitions) kafka_ensure_topic(k);
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
