/* bus/kafka_consumer.c — the consumer side of the Kafka bus (docs/kafka.md §4): each
 * bus_consumer is one rdkafka consumer in the group "<prefix><group>" (cooperative-sticky
 * where librdkafka allows it: kafka_assignor; no auto-commit). Per partition it keeps the
 * offsets it handed out in order; bus_done marks them, and the committed offset only moves
 * over the done prefix, so a crash only ever redelivers, and redelivery is idempotent
 * downstream (the store skips seqs it has; alert ids are deterministic). Also: the shutdown
 * drain and the start-up catch-up check. */
#include "kafka_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "bus"

/* ---- consuming: offsets handed out, done, committed ---- */

static part_track *track_of(kafka_consumer *c, int32_t partition)
{
    if (partition < 0 || partition >= KAFKA_MAX_PARTITIONS) return NULL;
    uint32_t p = (uint32_t)partition;
    if (p >= c->part_count) {
        uint32_t n = c->part_count ? c->part_count : 8;
        while (n <= p) n *= 2;
        c->parts = mamori_xrealloc(c->parts, n * sizeof *c->parts);
        memset(c->parts + c->part_count, 0, (n - c->part_count) * sizeof *c->parts);
        for (uint32_t i = c->part_count; i < n; i++)
            c->parts[i].commit_next = c->parts[i].next_offset = c->parts[i].end_at_assign = -1;
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
    t->start_offset = -1;
    t->end_at_assign = -1;
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
    if (now - c->last_commit_ms < KAFKA_COMMIT_INTERVAL_MS) return;
    c->last_commit_ms = now;
    commit_dirty(c, NULL, false);
}

void kafka_on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_consumer *c = opaque;
    kafka_report_error(c->k, rk, err, reason);
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

static int list_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list, int64_t which, int timeout_ms);

static void describe(const rd_kafka_topic_partition_list_t *parts, char *out, size_t len)
{
    size_t pos = 0;
    out[0] = '\0';
    for (int i = 0; i < parts->cnt && pos + 12 < len; i++)
        pos += (size_t)snprintf(out + pos, len - pos, "%s%d", i ? "," : "", parts->elems[i].partition);
}

/* The groups' assignment strategy: cooperative-sticky (a member joining or leaving moves only
 * the partitions that must move), except with librdkafka before 2.3.0, whose cooperative-sticky
 * assignor aborts (or crashes) when a consumer is destroyed before its first assignment
 * (librdkafka #4312, fixed in 2.3.0): seen here as mamorid dying of SIGABRT at shutdown with
 * `rd_kafka_sticky_assignor_state_destroy: Assertion 'assignor_state' failed` (Debian 12 ships
 * 2.0.2). There, the eager round-robin assignor: every rebalance revokes and reassigns all of
 * a member's partitions, which on_rebalance handles the same way (done batches committed at
 * the revocation, the rest redelivered). */
const char *kafka_assignor(void)
{
    static atomic_bool logged;
    bool fixed = rd_kafka_version() >= 0x020300ff;
    if (!fixed && !atomic_exchange(&logged, true))
        LOG_INFO(MOD, "librdkafka %s: consumer groups use the roundrobin assignor (its cooperative-sticky one aborts "
                      "at shutdown before 2.3.0)",
                 rd_kafka_version_str());
    return fixed ? "cooperative-sticky" : "roundrobin";
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
        /* where the group stands, for the lag until the first message arrives (one round trip) */
        rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
        bool known = rd_kafka_committed(rk, committed, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
        /* and where each partition ends now: until the first fetch response librdkafka does not
         * know the high watermark, and a lag of "unknown" must not read as 0 (caught up) */
        rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_copy(parts);
        (void)list_offsets(rk, ends, RD_KAFKA_OFFSET_END, 5000);
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < parts->cnt; i++) {
            part_track *t = track_of(c, parts->elems[i].partition);
            if (!t) continue;
            track_reset(t, true);
            if (known && !committed->elems[i].err) t->start_offset = committed->elems[i].offset >= 0 ? committed->elems[i].offset : -1;
            t->end_at_assign = ends->elems[i].offset;
        }
        pthread_mutex_unlock(&c->lock);
        rd_kafka_topic_partition_list_destroy(ends);
        rd_kafka_topic_partition_list_destroy(committed);
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

int kafka_add_group(bus *bb, const char *name, uint32_t consumers)
{
    kafka_bus *k = kafka_of(bb);
    if (k->group_count == KAFKA_MAX_GROUPS || consumers == 0 || consumers > 1024 || strlen(name) >= sizeof k->groups[0].name)
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

int kafka_consumer_open(bus *bb, const char *name, uint32_t index, bus_consumer **out)
{
    kafka_bus *k = kafka_of(bb);
    kgroup *g = find_group(k, name);
    if (!g) return -ENOENT;
    if (index >= g->consumers) return -EINVAL;
    pthread_mutex_lock(&k->consumers_lock);
    for (uint32_t i = 0; i < k->consumer_count; i++)
        if (k->consumers[i]->group == g && k->consumers[i]->index == index) {
            pthread_mutex_unlock(&k->consumers_lock);
            return -EBUSY;
        }
    bool full = k->consumer_count == KAFKA_MAX_CONSUMERS;
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
    rd_kafka_conf_t *conf = kafka_conf_new(k, client_id, c, kafka_on_consumer_error);
    if (!conf || kafka_conf_set(conf, "group.id", g->kafka_id, client_id) ||
        kafka_conf_set(conf, "partition.assignment.strategy", kafka_assignor(), client_id) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", client_id) ||
        kafka_conf_set(conf, "enable.auto.offset.store", "false", client_id) ||
        kafka_conf_set(conf, "auto.offset.reset", "earliest", client_id) ||
        kafka_conf_set(conf, "enable.partition.eof", "false", client_id) ||
        kafka_conf_set(conf, "session.timeout.ms", KAFKA_SESSION_TIMEOUT_MS, client_id) ||
        kafka_conf_set(conf, "queued.max.messages.kbytes", KAFKA_CONSUMER_PREFETCH_KIB, client_id)) {
        if (conf) rd_kafka_conf_destroy(conf);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -EINVAL;
    }
    if (k->instance_id[0]) {
        /* a restarted process takes its members' places at once (no rebalance, no waiting for
         * the dead members' sessions); two processes with one id fence each other */
        char instance[300];
        snprintf(instance, sizeof instance, "%s-%s-%u", k->instance_id, g->name, index);
        if (kafka_conf_set(conf, "group.instance.id", instance, client_id)) {
            rd_kafka_conf_destroy(conf);
            pthread_mutex_destroy(&c->lock);
            free(c);
            return -EINVAL;
        }
    }
    c->static_shard = k->opt.store_shards > 0 && !strcmp(g->name, "store");
    if (!c->static_shard) rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
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
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!c->static_shard) { /* a static shard assigns its partitions in its first polls (static_assign) */
        rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, k->topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(c->rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
    }
    if (err) {
        LOG_ERROR(MOD, "kafka consumer %s: subscribe %s: %s", c->name, k->topic, rd_kafka_err2str(err));
        rd_kafka_destroy(c->rk);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -EIO;
    }
    /* the value limit is the message limit, not ingest.max_batch_bytes: normalized events
     * (mamori.* stamps, canonical form) can be larger than what the agent sent, and a
     * message our producer could send must never be refused here */
    kafka_decoder_init(&c->dec, k->opt.max_batch_events, k->max_message_value_bytes, k->opt.max_past_us,
                       k->opt.max_future_us);
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
    view.timestamp_us = kafka_timestamp_us(ts_ms); /* the producer chose it: may not scale */
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
        b = bus_batch_create(KAFKA_CONSUMER_ARENA_CHUNK);
        uint64_t reread_before = c->dec.reread_failures;
        rc = kafka_decode_batch(&c->dec, &view, b, why, sizeof why);
        if (c->dec.reread_failures != reread_before) {
            atomic_fetch_add_explicit(&c->reread_failures, c->dec.reread_failures - reread_before, memory_order_relaxed);
            LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "kafka consumer %s: partition %d offset %lld: %llu normalized events "
                            "did not read back (acked, not stored): a bug, please report", c->name, m->partition,
                            (long long)m->offset, (unsigned long long)(c->dec.reread_failures - reread_before));
        }
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
                             : t->start_offset >= 0                              ? t->start_offset
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

/* A static store shard takes its partitions itself, once the topic exists: p % shards ==
 * shard, each from the group's committed offset (the group has no members, only offsets). */
static void static_assign(kafka_consumer *c)
{
    kafka_bus *k = c->k;
    int64_t now = clock_mono_ms();
    if (now < c->next_assign_try_ms) return;
    c->next_assign_try_ms = now + 1000;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->rk, k->topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(c->rk, 0, rkt, &md, 2000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        if (!err) rd_kafka_metadata_destroy(md);
        LOG_RATELIMITED(LOG_LEVEL_INFO, MOD, 5, "kafka consumer %s: waiting for topic %s to exist", c->name, k->topic);
        return;
    }
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if ((uint32_t)n < k->opt.store_shards)
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 60, "kafka consumer %s: topic %s has %d partitions for %u store shards: "
                        "some shards own none", c->name, k->topic, n, k->opt.store_shards);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        if ((uint32_t)p % k->opt.store_shards == k->opt.store_shard)
            rd_kafka_topic_partition_list_add(parts, k->topic, p)->offset = RD_KAFKA_OFFSET_STORED;
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    bool known = parts->cnt && rd_kafka_committed(c->rk, committed, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; known && i < committed->cnt; i++)
        if (committed->elems[i].err) known = false;
    if (!known && parts->cnt) {
        /* the group's coordinator may not be ready yet (a new group): try again in a second
         * rather than let the fetch start from a guess */
        LOG_RATELIMITED(LOG_LEVEL_INFO, MOD, 5, "kafka consumer %s: committed offsets not known yet; retrying", c->name);
        rd_kafka_topic_partition_list_destroy(committed);
        rd_kafka_topic_partition_list_destroy(parts);
        return;
    }
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = committed->elems[i].offset >= 0 ? committed->elems[i].offset : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_copy(parts);
    if (parts->cnt) (void)list_offsets(c->rk, ends, RD_KAFKA_OFFSET_END, 5000);
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < parts->cnt; i++) {
        part_track *t = track_of(c, parts->elems[i].partition);
        if (!t) continue;
        track_reset(t, true);
        if (known && !committed->elems[i].err && committed->elems[i].offset >= 0) t->start_offset = committed->elems[i].offset;
        t->end_at_assign = ends->elems[i].offset;
    }
    pthread_mutex_unlock(&c->lock);
    char which[256];
    describe(parts, which, sizeof which);
    err = parts->cnt ? rd_kafka_assign(c->rk, parts) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err) {
        LOG_ERROR(MOD, "kafka consumer %s: assign [%s]: %s", c->name, which, rd_kafka_err2str(err));
    } else {
        c->static_assigned = true;
        atomic_fetch_add_explicit(&c->rebalances, 1, memory_order_relaxed);
        LOG_INFO(MOD, "kafka consumer %s: store shard %u of %u owns partitions [%s]", c->name, k->opt.store_shard,
                 k->opt.store_shards, which);
    }
    rd_kafka_topic_partition_list_destroy(ends);
    rd_kafka_topic_partition_list_destroy(committed);
    rd_kafka_topic_partition_list_destroy(parts);
}

int kafka_poll(bus_consumer *bc, bus_batch **out, size_t max, int timeout_ms)
{
    kafka_consumer *c = (kafka_consumer *)bc;
    kafka_bus *k = c->k;
    if (c->drained) return -ESHUTDOWN;
    if (c->static_shard && !c->static_assigned) static_assign(c);
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
            /* an error event: report it and return what we have, so a client that keeps
             * answering with errors can never spin this loop (the caller polls again) */
            rd_kafka_resp_err_t err = m->err;
            if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char why[512];
                rd_kafka_fatal_error(c->rk, why, sizeof why);
                LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "kafka consumer %s: fatal error: %s (e.g. fenced by another "
                                "process with the same bus.kafka.instance_id); it consumes nothing until mamorid "
                                "restarts", c->name, why);
            } else if (err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "kafka consumer %s: %s", c->name, rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            if (n == 0 && err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                struct timespec ts = {0, 10 * 1000000L};
                nanosleep(&ts, NULL);
            }
            break;
        }
        bus_batch *b = take_message(c, m);
        rd_kafka_message_destroy(m);
        if (b) out[n++] = b;
        if (atomic_load(&c->outstanding_bytes) >= k->opt.max_inflight_bytes) break;
    }
    maybe_commit(c);
    return (int)n;
}

static void forget(kafka_consumer *c, bus_batch **batches, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_sub(&c->outstanding_batches, 1);
        atomic_fetch_sub(&c->outstanding_bytes, batches[i]->accounted_bytes);
        bus_batch_destroy(batches[i]);
    }
}

void kafka_done(bus_consumer *bc, bus_batch **batches, size_t n)
{
    kafka_consumer *c = (kafka_consumer *)bc;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        bus_batch *b = batches[i];
        part_track *t = track_of(c, (int32_t)b->partition);
        if (t && t->assigned && t->generation == b->assignment) track_done(t, b->offset);
    }
    pthread_mutex_unlock(&c->lock);
    forget(c, batches, n);
    maybe_commit(c);
}

/* Not done: the offset stays in the ring, so the commit point never passes it (it is
 * redelivered after a restart or to the partition's next owner). */
void kafka_abandon(bus_consumer *bc, bus_batch **batches, size_t n)
{
    forget((kafka_consumer *)bc, batches, n);
}

void kafka_consumer_close(bus_consumer *bc)
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

/* ---- catching up, lag ---- */

int kafka_wait_caught_up(bus *bb, const char *name, int timeout_ms)
{
    kafka_bus *k = kafka_of(bb);
    kgroup *g = find_group(k, name);
    if (!g) return -ENOENT;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    char client_id[200];
    snprintf(client_id, sizeof client_id, "%s-%s-monitor", k->client_id, g->name);
    rd_kafka_conf_t *conf = kafka_conf_new(k, client_id, k, kafka_on_client_error);
    if (!conf || kafka_conf_set(conf, "group.id", g->kafka_id, client_id)) {
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
    if (rd_kafka_metadata(rk, 0, rkt, &md, MAMORI_MAX(timeout_ms, 1))) {
        md = NULL;
        goto out;
    }
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        /* no topic, nothing to catch up with; make it now (the broker was down at start-up) */
        kafka_ensure_topic(k);
        rc = 0;
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) goto out;
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

/* Messages in the topic not yet done by this consumer's assigned partitions (from the cached
 * high watermarks: no broker round trip). */
uint64_t kafka_consumer_lag(kafka_consumer *c, uint32_t *assigned, uint32_t *unknown)
{
    uint64_t lag = 0;
    *assigned = 0;
    *unknown = 0;
    pthread_mutex_lock(&c->lock);
    for (uint32_t p = 0; p < c->part_count; p++) {
        part_track *t = &c->parts[p];
        if (!t->assigned) continue;
        (*assigned)++;
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(c->rk, c->k->topic, (int32_t)p, &lo, &hi)) lo = hi = -1;
        int64_t part_lag = kafka_track_lag(t, lo, hi);
        if (part_lag < 0) (*unknown)++;
        else lag += (uint64_t)part_lag;
    }
    pthread_mutex_unlock(&c->lock);
    return lag;
}
