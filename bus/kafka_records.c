/* bus/kafka_records.c — keyed records other than event batches. On the alerts topic: detect
 * workers without the store role send their alerts here, and each store shard reads the
 * partitions it owns (p % shards == shard), so an agent's alerts land on the shard that holds
 * its events and are written there once (alert ids are deterministic; the store skips an id it
 * has). On the matches topic: re-keyed correlation matches, read by the detect processes'
 * correlate intakes (server/detect_rekey.c), which commit with bus_records_done_at. Sending is synchronous (the caller commits its own offsets only after the broker has
 * the records); reading commits only what the caller says is durable. */
#include "kafka_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "bus"
#define RECORDS_META_HEADER "mamori.meta"
#define RECORDS_POLL_MAX 1024u

/* ---- sending ---- */

typedef struct send_wait {
    _Atomic uint32_t pending;
    _Atomic int failed; /* first error, as a negative errno */
} send_wait;

static void on_record_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    send_wait *w = m->_private;
    if (m->err) {
        int expected = 0;
        atomic_compare_exchange_strong(&w->failed, &expected, -EIO);
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka: record not delivered: %s (sent again)", rd_kafka_err2str(m->err));
    }
    atomic_fetch_sub(&w->pending, 1);
}

static rd_kafka_t *records_producer(kafka_bus *k)
{
    pthread_mutex_lock(&k->records_lock);
    if (!k->records_producer) {
        char client_id[200];
        snprintf(client_id, sizeof client_id, "%s-records", k->client_id);
        rd_kafka_conf_t *conf = kafka_conf_new(k, client_id, k, kafka_on_client_error);
        if (conf && !kafka_conf_set(conf, "enable.idempotence", "true", client_id) &&
            !kafka_conf_set(conf, "acks", "all", client_id) &&
            !kafka_conf_set(conf, "compression.codec", k->compression, client_id) &&
            !kafka_conf_set(conf, "linger.ms", "1", client_id) &&
            !kafka_conf_set(conf, "partitioner", "murmur2_random", client_id)) {
            rd_kafka_conf_set_dr_msg_cb(conf, on_record_delivery);
            char errstr[512];
            k->records_producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
            if (!k->records_producer) {
                LOG_ERROR(MOD, "kafka records producer: %s", errstr);
                rd_kafka_conf_destroy(conf);
            }
        } else if (conf) {
            rd_kafka_conf_destroy(conf);
        }
    }
    rd_kafka_t *rk = k->records_producer;
    pthread_mutex_unlock(&k->records_lock);
    return rk;
}

static const char *records_topic(kafka_bus *k, int which)
{
    const char *t = which == BUS_RECORDS_MATCHES ? k->matches_topic : which == BUS_RECORDS_ALERTS ? k->alerts_topic : "";
    return t[0] ? t : NULL;
}

int kafka_send_records(bus *bb, int which, const bus_record *recs, size_t n, int timeout_ms)
{
    kafka_bus *k = kafka_of(bb);
    const char *topic = records_topic(k, which);
    if (!topic) return -ENOTSUP;
    if (n == 0) return 0;
    rd_kafka_t *rk = records_producer(k);
    if (!rk) return -EIO;
    send_wait w;
    atomic_init(&w.pending, 0);
    atomic_init(&w.failed, 0);
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (size_t i = 0; i < n; i++) {
        const bus_record *r = &recs[i];
        atomic_fetch_add(&w.pending, 1);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(r->key, r->key_len),
                RD_KAFKA_V_VALUE((void *)r->value, r->value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADER(RECORDS_META_HEADER, r->meta, r->meta ? (ssize_t)r->meta_len : 0),
                RD_KAFKA_V_OPAQUE(&w), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || clock_mono_ms() >= deadline) {
                atomic_fetch_sub(&w.pending, 1);
                int expected = 0;
                atomic_compare_exchange_strong(&w.failed, &expected, -EAGAIN);
                break;
            }
            rd_kafka_poll(rk, 10);
        }
        if (atomic_load(&w.failed)) break;
    }
    /* w lives on this stack: wait for every report, also past the deadline (a report that
     * comes later would write freed memory); message.timeout.ms bounds how long that is */
    while (atomic_load(&w.pending) > 0) {
        rd_kafka_poll(rk, 5);
        if (clock_mono_ms() >= deadline && atomic_load(&w.pending) > 0) {
            int expected = 0;
            atomic_compare_exchange_strong(&w.failed, &expected, -ETIMEDOUT);
        }
    }
    return atomic_load(&w.failed);
}

/* ---- reading ---- */

struct bus_records {
    kafka_bus *k;
    rd_kafka_t *rk;
    const char *topic;
    char name[200];
    uint32_t shard, shards;
    bool assigned;
    int64_t next_assign_try_ms;
    rd_kafka_message_t *held[RECORDS_POLL_MAX]; /* polled, not yet done */
    uint32_t held_count;
};

static void records_assign(bus_records *r)
{
    int64_t now = clock_mono_ms();
    if (now < r->next_assign_try_ms) return;
    r->next_assign_try_ms = now + 1000;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, r->topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(r->rk, 0, rkt, &md, 2000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        if (!err) rd_kafka_metadata_destroy(md);
        return;
    }
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        if (r->shards == 0 || (uint32_t)p % r->shards == r->shard)
            rd_kafka_topic_partition_list_add(parts, r->topic, p)->offset = RD_KAFKA_OFFSET_STORED;
    /* from the committed offsets, asked explicitly: a coordinator that is not ready yet
     * (a new group) fails the request, and the assignment is tried again in a second */
    err = rd_kafka_committed(r->rk, parts, 5000);
    for (int i = 0; !err && i < parts->cnt; i++) {
        if (parts->elems[i].err) err = parts->elems[i].err;
        else if (parts->elems[i].offset < 0) parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (err) {
        LOG_RATELIMITED(LOG_LEVEL_INFO, MOD, 5, "kafka records %s: committed offsets not known yet (%s); retrying",
                        r->name, rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(parts);
        return;
    }
    err = rd_kafka_assign(r->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        LOG_ERROR(MOD, "kafka records %s: assign: %s", r->name, rd_kafka_err2str(err));
        return;
    }
    r->assigned = true;
    LOG_INFO(MOD, "kafka records %s: reading topic %s (shard %u of %u)", r->name, r->topic, r->shard,
             r->shards ? r->shards : 1);
}

int kafka_records_open(bus *bb, int which, const char *group, uint32_t shard, uint32_t shards, bus_records **out)
{
    kafka_bus *k = kafka_of(bb);
    const char *topic = records_topic(k, which);
    if (!topic) return -ENOTSUP;
    if (shards && shard >= shards) return -EINVAL;
    bus_records *r = mamori_xcalloc(1, sizeof *r);
    r->k = k;
    r->topic = topic;
    r->shard = shard;
    r->shards = shards;
    char group_id[200];
    snprintf(group_id, sizeof group_id, "%s%s", k->group_prefix, group);
    snprintf(r->name, sizeof r->name, "%s", group_id);
    char client_id[240];
    snprintf(client_id, sizeof client_id, "%s-%s", k->client_id, group);
    rd_kafka_conf_t *conf = kafka_conf_new(k, client_id, k, kafka_on_client_error);
    if (!conf || kafka_conf_set(conf, "group.id", group_id, client_id) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", client_id) ||
        kafka_conf_set(conf, "enable.auto.offset.store", "false", client_id) ||
        kafka_conf_set(conf, "auto.offset.reset", "earliest", client_id)) {
        if (conf) rd_kafka_conf_destroy(conf);
        free(r);
        return -EINVAL;
    }
    char errstr[512];
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!r->rk) {
        LOG_ERROR(MOD, "kafka records %s: %s", r->name, errstr);
        rd_kafka_conf_destroy(conf);
        free(r);
        return -EINVAL;
    }
    rd_kafka_poll_set_consumer(r->rk);
    *out = r;
    return 0;
}

int bus_records_poll(bus_records *r, bus_record *out, size_t max, int timeout_ms)
{
    if (!r->assigned) records_assign(r);
    if (!r->assigned) {
        struct timespec ts = {0, (long)MAMORI_MIN(timeout_ms, 100) * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    size_t n = 0;
    int wait_ms = timeout_ms;
    while (n < max && r->held_count < RECORDS_POLL_MAX) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, wait_ms);
        wait_ms = 0;
        if (!m) break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka records %s: %s", r->name, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            break;
        }
        bus_record *rec = &out[n++];
        memset(rec, 0, sizeof *rec);
        rec->key = m->key;
        rec->key_len = m->key_len;
        rec->value = m->payload;
        rec->value_len = m->len;
        rec->partition = m->partition;
        rec->offset = m->offset;
        rd_kafka_headers_t *hdrs = NULL;
        const void *v = NULL;
        size_t vlen = 0;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(hdrs, RECORDS_META_HEADER, &v, &vlen) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rec->meta = v;
            rec->meta_len = vlen;
        }
        r->held[r->held_count++] = m;
    }
    return (int)n;
}

void bus_records_done(bus_records *r)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (uint32_t i = 0; i < r->held_count; i++) {
        rd_kafka_message_t *m = r->held[i];
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(list, r->topic, m->partition);
        if (!tp) tp = rd_kafka_topic_partition_list_add(list, r->topic, m->partition);
        if (m->offset + 1 > tp->offset) tp->offset = m->offset + 1; /* offsets grow within a partition */
        rd_kafka_message_destroy(m);
    }
    if (list->cnt) {
        rd_kafka_resp_err_t err = rd_kafka_commit(r->rk, list, 1);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka records %s: commit: %s (read again after a restart)",
                            r->name, rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
    r->held_count = 0;
}

void bus_records_done_at(bus_records *r, const bus_records_mark *marks, size_t n)
{
    for (uint32_t i = 0; i < r->held_count; i++) rd_kafka_message_destroy(r->held[i]);
    r->held_count = 0;
    if (n == 0) return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) rd_kafka_topic_partition_list_add(list, r->topic, marks[i].partition)->offset = marks[i].offset;
    rd_kafka_resp_err_t err = rd_kafka_commit(r->rk, list, 1);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka records %s: commit: %s (read again after a restart)", r->name,
                        rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
}

void bus_records_close(bus_records *r)
{
    if (!r) return;
    for (uint32_t i = 0; i < r->held_count; i++) rd_kafka_message_destroy(r->held[i]); /* not done: read again */
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
    free(r);
}
