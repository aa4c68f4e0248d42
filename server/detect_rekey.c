/* server/detect_rekey.c — the receiving end of re-keyed correlation matches (Kafka,
 * docs/detection.md §11.8). Detection threads publish the base matches of correlations not
 * grouped by host to the matches topic, keyed by tenant + group-by value (detect_corr.c,
 * detect_commit.c); here one thread per detect process reads the partitions this process owns
 * (p % bus.kafka.correlate_shards == correlate_shard) in group "correlate", feeds them to one
 * engine per tenant and writes the correlation alerts where this process's alerts go (its
 * store, or the alerts topic towards the store shards). Each key's state lives on exactly one
 * worker.
 *
 * The state is not checkpointed: it is the log. Offsets are committed only after the alerts
 * a round raised are durable, and never past a match that a future alert may still need: per
 * partition, the first match (in offset order) whose event time is not older than the newest
 * time read from that partition minus (2 x the longest timespan + the lateness allowance).
 * After a kill -9 the worker reads again from there, rebuilding the windows; alerts raised
 * again have the same ids (correlate_alert_id) and the store keeps one. A rule reload starts
 * the same way (state rebuilt under the new rules from the committed offsets). */
#include "detect_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "detect"
#define REKEY_POLL_MAX 512

typedef struct rk_pending {
    int64_t offset, time_us;
} rk_pending;

typedef struct rk_part {
    int32_t partition;
    rk_pending *q; /* matches still needed, offset order (a ring would do; compacted when half empty) */
    size_t head, len, cap;
    int64_t max_time_us;
    int64_t next_offset; /* after the last record read */
} rk_part;

typedef struct rk_tenant {
    uint64_t tenant_hash;
    correlate_engine *engine;
} rk_tenant;

struct corr_intake {
    detect_rt *rt;
    pthread_t thread;
    atomic_bool stop;
    bool joined;
    bus_records *reader;
    corr_gen *gen;
    int64_t keep_us;
    rk_tenant *tenants;
    uint32_t tenant_count, tenant_cap;
    rk_part *parts;
    uint32_t part_count, part_cap;
    corr_alerts out;
    _Atomic uint64_t fed, invalid, unknown, alerts_written, alerts_existing, write_errors, rebuilds;
    /* the engines' counters, published after each round (the engines are this thread's) */
    _Atomic uint64_t duplicates, late, keys, events, duplicates_before, late_before;
};

static void publish_stats(corr_intake *in)
{
    uint64_t dup = 0, late = 0, keys = 0, events = 0;
    for (uint32_t i = 0; i < in->tenant_count; i++) {
        correlate_stats st;
        correlate_engine_stats(in->tenants[i].engine, SIZE_MAX, &st);
        dup += st.duplicates;
        late += st.late;
        keys += st.keys;
        events += st.events;
    }
    atomic_store(&in->duplicates, atomic_load(&in->duplicates_before) + dup);
    atomic_store(&in->late, atomic_load(&in->late_before) + late);
    atomic_store(&in->keys, keys);
    atomic_store(&in->events, events);
}

static void reset_state(corr_intake *in)
{
    publish_stats(in); /* the counters of engines about to go stay counted */
    atomic_store(&in->duplicates_before, atomic_load(&in->duplicates));
    atomic_store(&in->late_before, atomic_load(&in->late));
    for (uint32_t i = 0; i < in->tenant_count; i++) correlate_engine_destroy(in->tenants[i].engine);
    in->tenant_count = 0;
    for (uint32_t i = 0; i < in->part_count; i++) free(in->parts[i].q);
    in->part_count = 0;
    bus_records_close(in->reader);
    in->reader = NULL;
    corr_gen_unref(in->gen);
    in->gen = NULL;
}

static rk_part *part_get(corr_intake *in, int32_t p)
{
    for (uint32_t i = 0; i < in->part_count; i++)
        if (in->parts[i].partition == p) return &in->parts[i];
    if (in->part_count == in->part_cap) {
        in->part_cap = in->part_cap ? in->part_cap * 2 : 16;
        in->parts = mamori_xrealloc(in->parts, in->part_cap * sizeof *in->parts);
    }
    rk_part *r = &in->parts[in->part_count++];
    memset(r, 0, sizeof *r);
    r->partition = p;
    r->max_time_us = INT64_MIN;
    return r;
}

static void part_push(rk_part *p, int64_t offset, int64_t time_us)
{
    if (p->head + p->len == p->cap) {
        if (p->head > p->cap / 2) {
            memmove(p->q, p->q + p->head, p->len * sizeof *p->q);
            p->head = 0;
        } else {
            p->cap = p->cap ? p->cap * 2 : 64;
            p->q = mamori_xrealloc(p->q, p->cap * sizeof *p->q);
        }
    }
    p->q[p->head + p->len++] = (rk_pending){offset, time_us};
    if (time_us > p->max_time_us) p->max_time_us = time_us;
}

/* The offset to commit: the first match still needed, else after the last one read. */
static int64_t part_mark(rk_part *p, int64_t keep_us)
{
    int64_t horizon = p->max_time_us == INT64_MIN ? INT64_MIN : p->max_time_us - keep_us;
    while (p->len && p->q[p->head].time_us < horizon) {
        p->head++;
        p->len--;
    }
    if (p->len == 0) p->head = 0;
    return p->len ? p->q[p->head].offset : p->next_offset;
}

static correlate_engine *tenant_engine(corr_intake *in, uint64_t th)
{
    for (uint32_t i = 0; i < in->tenant_count; i++)
        if (in->tenants[i].tenant_hash == th) return in->tenants[i].engine;
    if (in->tenant_count == in->tenant_cap) {
        in->tenant_cap = in->tenant_cap ? in->tenant_cap * 2 : 4;
        in->tenants = mamori_xrealloc(in->tenants, in->tenant_cap * sizeof *in->tenants);
    }
    correlate_options opt;
    correlate_options_default(&opt);
    const mamori_config *cfg = in->rt->cfg;
    opt.keys_max = cfg->detect.correlation_max_keys;
    opt.events_per_key_max = cfg->detect.correlation_max_events_per_key;
    opt.lateness_us = (int64_t)cfg->detect.correlation_lateness_s * 1000000;
    rk_tenant *t = &in->tenants[in->tenant_count++];
    t->tenant_hash = th;
    t->engine = correlate_engine_create(corr_gen_set(in->gen), &opt);
    return t->engine;
}

typedef struct rk_feed {
    corr_origin_view *view;
    corr_alerts *out;
} rk_feed;

static void on_alert(void *ctx, const correlate_alert *ca)
{
    rk_feed *f = ctx;
    corr_alert_append(f->view, ca, f->out);
}

static bool open_reader(corr_intake *in)
{
    const mamori_config *cfg = in->rt->cfg;
    int rc = bus_records_open_on(in->rt->bus, BUS_RECORDS_MATCHES, "correlate", cfg->bus.kafka.correlate_shard,
                                 cfg->bus.kafka.correlate_shards, &in->reader);
    if (rc) {
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 5, "correlation intake: cannot read topic %s: %s",
                        cfg->bus.kafka.matches_topic, strerror(-rc));
        return false;
    }
    const correlate_set *set = corr_gen_set(in->gen);
    int64_t longest = 0;
    for (size_t i = 0; i < correlate_set_count(set); i++)
        longest = MAMORI_MAX(longest, correlate_set_rule(set, i)->timespan_us);
    /* two timespans: a chained correlation's window over alerts whose own windows reach back */
    in->keep_us = 2 * longest + (int64_t)cfg->detect.correlation_lateness_s * 1000000;
    LOG_INFO(MOD, "correlation intake: reading %s (shard %u of %u), %zu correlations, keeping %lld s of matches",
             cfg->bus.kafka.matches_topic, cfg->bus.kafka.correlate_shard,
             cfg->bus.kafka.correlate_shards ? cfg->bus.kafka.correlate_shards : 1, correlate_set_count(set),
             (long long)(in->keep_us / 1000000));
    return true;
}

/* One record: counted and skipped when it is not a match of a known correlation. */
static void feed_record(corr_intake *in, const bus_record *r, char **names, uint32_t *name_count)
{
    const char *topic = in->rt->cfg->bus.kafka.matches_topic;
    rk_part *p = part_get(in, r->partition);
    if (r->offset + 1 > p->next_offset) p->next_offset = r->offset + 1;
    correlate_origin o;
    correlate_match *m = NULL;
    int rc = r->meta ? correlate_origin_decode(r->meta, r->meta_len, &o) : -EINVAL;
    if (rc == 0) rc = correlate_match_decode(corr_gen_set(in->gen), r->value, r->value_len, &m);
    if (rc == -ENOENT) {
        atomic_fetch_add_explicit(&in->unknown, 1, memory_order_relaxed);
        LOG_RATELIMITED(LOG_LEVEL_INFO, MOD, 5,
                        "correlation intake: %s partition %d offset %lld: no such correlation loaded here, skipped",
                        topic, (int)r->partition, (long long)r->offset);
        return;
    }
    if (rc) {
        atomic_fetch_add_explicit(&in->invalid, 1, memory_order_relaxed);
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1,
                        "correlation intake: %s partition %d offset %lld: not a re-keyed match (%s origin), skipped",
                        topic, (int)r->partition, (long long)r->offset, r->meta ? "bad match or" : "no");
        return;
    }
    char *tenant = mamori_xstrndup(o.tenant, o.tenant_len), *agent = mamori_xstrndup(o.agent_id, o.agent_id_len);
    names[(*name_count)++] = tenant;
    names[(*name_count)++] = agent;
    corr_origin_view v = {.tenant = tenant, .agent_id = agent, .tenant_hash = event_tenant_hash(tenant),
                          .agent_hash = o.agent_hash, .seq = o.seq, .index = o.index, .ts_us = o.ts_us,
                          .received_us = o.received_us, .now_us = clock_wall_us(), .host_id = o.host_id,
                          .host_id_len = o.host_id_len, .host_name = o.host_name, .host_name_len = o.host_name_len};
    part_push(p, r->offset, correlate_match_time(m));
    rk_feed f = {.view = &v, .out = &in->out};
    correlate_match_set_received(m, o.received_us);
    correlate_engine_feed(tenant_engine(in, v.tenant_hash), m, on_alert, &f);
    correlate_match_destroy(m);
    atomic_fetch_add_explicit(&in->fed, 1, memory_order_relaxed);
}

/* The round's alerts, durable where this process's alerts go; false only when stopping. */
static bool write_alerts(corr_intake *in)
{
    corr_alerts *o = &in->out;
    if (o->count == 0) return true;
    corr_alerts_fix(o);
    int64_t created = clock_wall_us();
    for (uint32_t i = 0; i < o->count; i++) o->v[i].created_us = o->v[i].updated_us = created;
    bool *written = mamori_xcalloc(o->count, sizeof *written);
    uint32_t backoff_ms = 50;
    bool ok = false;
    while (!atomic_load(&in->stop)) {
        uint32_t n = 0;
        int rc;
        if (!in->rt->alerts_to_bus) {
            rc = store_alerts_commit_state(in->rt->db, o->v, o->count, NULL, 0, NULL, written, &n);
        } else {
            bus_record *recs = mamori_xcalloc(o->count, sizeof *recs);
            uint8_t(*meta)[ALERT_META_BYTES] = mamori_xcalloc(o->count, sizeof *meta);
            for (uint32_t i = 0; i < o->count; i++) {
                const char *key = o->keys.data + o->key_offsets[i];
                recs[i] = (bus_record){.key = key, .key_len = strlen(key), .value = o->v[i].body,
                                       .value_len = o->v[i].body_len};
                recs[i].meta_len = alert_meta_encode(&o->v[i], meta[i]);
                recs[i].meta = meta[i];
            }
            rc = bus_send_records(in->rt->bus, recs, o->count, 10000);
            free(meta);
            free(recs);
            if (rc == 0)
                for (uint32_t i = 0; i < o->count; i++) written[i] = true, n++;
        }
        if (rc == 0) {
            ok = true;
            for (uint32_t i = 0; i < o->count; i++)
                if (written[i]) {
                    detect_rule_count(in->rt, o->rules[i], 1);
                    if (!in->rt->alerts_to_bus) detect_response_corr(in->rt, o, i); /* else maybe a replay */
                }
            atomic_fetch_add_explicit(&in->alerts_written, n, memory_order_relaxed);
            atomic_fetch_add_explicit(&in->alerts_existing, o->count - n, memory_order_relaxed);
            break;
        }
        atomic_fetch_add_explicit(&in->write_errors, 1, memory_order_relaxed);
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "correlation intake: writing %u alerts failed, retrying: %s",
                        o->count, strerror(-rc));
        struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (backoff_ms < 5000) backoff_ms *= 2;
    }
    free(written);
    corr_alerts_clear(o);
    return ok;
}

static void *intake_main(void *arg)
{
    corr_intake *in = arg;
    pthread_setname_np(pthread_self(), "corr-intake");
    bus_record *recs = mamori_xcalloc(REKEY_POLL_MAX, sizeof *recs);
    char **names = mamori_xcalloc(2 * REKEY_POLL_MAX, sizeof *names);
    bus_records_mark *marks = NULL;
    uint32_t marks_cap = 0;
    while (!atomic_load(&in->stop)) {
        corr_gen *g = corr_rt_current(in->rt->corr);
        if (g != in->gen) { /* first rule set, or a reload: rebuild from the committed offsets */
            if (in->gen) atomic_fetch_add_explicit(&in->rebuilds, 1, memory_order_relaxed);
            reset_state(in);
            in->gen = g;
            g = NULL;
        }
        corr_gen_unref(g);
        if (!corr_gen_count(in->gen) || (!in->reader && !open_reader(in))) {
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        int n = bus_records_poll(in->reader, recs, REKEY_POLL_MAX, 100);
        if (n <= 0) continue;
        uint32_t name_count = 0;
        for (int i = 0; i < n; i++) feed_record(in, &recs[i], names, &name_count);
        bool ok = write_alerts(in);
        for (uint32_t i = 0; i < name_count; i++) free(names[i]);
        if (!ok) break; /* stopping with alerts not durable: read again after the restart */
        if (marks_cap < in->part_count) {
            marks_cap = in->part_count;
            marks = mamori_xrealloc(marks, marks_cap * sizeof *marks);
        }
        for (uint32_t i = 0; i < in->part_count; i++)
            marks[i] = (bus_records_mark){in->parts[i].partition, part_mark(&in->parts[i], in->keep_us)};
        bus_records_done_at(in->reader, marks, in->part_count);
        publish_stats(in);
    }
    free(marks);
    free(names);
    free(recs);
    return NULL;
}

int corr_intake_start(detect_rt *rt, corr_intake **out)
{
    corr_intake *in = mamori_xcalloc(1, sizeof *in);
    in->rt = rt;
    corr_alerts_init(&in->out);
    int rc = pthread_create(&in->thread, NULL, intake_main, in);
    if (rc) {
        corr_alerts_fini(&in->out);
        free(in);
        return -rc;
    }
    *out = in;
    return 0;
}

void corr_intake_stop(corr_intake *in)
{
    if (!in || in->joined) return;
    atomic_store(&in->stop, true);
    pthread_join(in->thread, NULL);
    in->joined = true;
}

void corr_intake_free(corr_intake *in)
{
    if (!in) return;
    corr_intake_stop(in);
    reset_state(in);
    free(in->tenants);
    free(in->parts);
    corr_alerts_fini(&in->out);
    free(in);
}

void corr_intake_write_metrics(corr_intake *in, buf *o)
{
    if (!in) return;
#define M(name, type, help, v)                                                                                          \
    buf_printf(o, "# HELP " name " " help "\n# TYPE " name " " type "\n" name " %llu\n",                               \
               (unsigned long long)atomic_load_explicit(&(v), memory_order_relaxed))
    M("mamori_detect_correlation_intake_matches_total", "counter",
      "re-keyed matches read from the matches topic and fed to this worker's correlations", in->fed);
    M("mamori_detect_correlation_intake_invalid_total", "counter",
      "records on the matches topic that are not a re-keyed match (malformed): skipped", in->invalid);
    M("mamori_detect_correlation_intake_unknown_total", "counter",
      "re-keyed matches of a correlation this worker does not have loaded: skipped", in->unknown);
    M("mamori_detect_correlation_intake_alerts_total", "counter", "correlation alerts written from re-keyed matches",
      in->alerts_written);
    M("mamori_detect_correlation_intake_alerts_existing_total", "counter",
      "correlation alerts from re-keyed matches already stored (raised again after a restart)", in->alerts_existing);
    M("mamori_detect_correlation_intake_write_errors_total", "counter", "failed alert writes of the intake (retried)",
      in->write_errors);
    M("mamori_detect_correlation_intake_rebuilds_total", "counter",
      "state rebuilt from the committed offsets after a rule reload", in->rebuilds);
    M("mamori_detect_correlation_intake_duplicates_total", "counter",
      "re-keyed matches of an event the key holds already (redelivery): ignored", in->duplicates);
    M("mamori_detect_correlation_intake_late_total", "counter",
      "re-keyed matches older than the newest minus detect.correlation_lateness_s: ignored", in->late);
    M("mamori_detect_correlation_intake_keys", "gauge", "group-by keys held by the intake's engines", in->keys);
    M("mamori_detect_correlation_intake_events", "gauge", "matches held by the intake's engines", in->events);
#undef M
}
