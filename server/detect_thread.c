/* server/detect_thread.c — one detection thread per partition of the bus group "detect".
 * Per group of polled batches (consecutive ones, up to DETECT_GROUP_EVENTS events): take the
 * current rule set from the slot (the group boundary is the swap point: a batch is evaluated
 * whole with one rule set, never twice, never skipped), evaluate the group's events with this
 * thread's worker in one call, and keep each batch's alerts until the store has made the batch
 * durable; then write them, with the agents' "detected up to" watermarks, in one RocksDB
 * write, and release the batch. Batches without alerts only move the watermarks, which are
 * written every detect.checkpoint_interval_ms. Acks never wait for any of this. On Kafka a
 * consumed batch is durable already: its alerts are written at once, and releasing it (the
 * offset commit) is what marks it detected — never before its alerts are written. */
#include "detect_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/failpoint.h"
#include "core/log.h"

#define MOD "detect"

struct detect_thread {
    detect_rt *rt;
    uint32_t no;
    pthread_t thread;
    bool started;
    bus_consumer *consumer;
    detect_counters counters;
};

/* A batch evaluated and waiting for its durability; its alerts are alerts[first..+count),
 * the matches correlations use hits[first_hit..+hit_count) (fed once it is durable). */
typedef struct pending {
    bus_batch *batch;
    detect_ruleset *rs; /* keeps the alerts' rules alive */
    corr_gen *corr;     /* the rule set's correlations */
    uint32_t first_alert, alert_count;
    uint32_t first_hit, hit_count;
    bool corr_fed;
    bool skipped; /* taken while no rule set could be built: no watermark, no feeding (§7.1) */
} pending;

typedef struct corr_hit {
    uint32_t event_index;
    const detect_rule *rule;
} corr_hit;

/* Watermarks not yet written: one per agent, the highest seq. */
typedef struct mark_set {
    store_detect_mark *v;
    uint32_t count, cap;
    uint32_t *table; /* index + 1, 0 = empty */
    uint32_t mask;
} mark_set;

typedef struct thread_state {
    detect_thread *t;
    detect_rt *rt;
    detect_worker *worker;
    uint64_t bound_generation;
    detect_worker_stats last_stats;
    pending *pending;
    uint32_t pending_count, pending_cap;
    store_alert *alerts;
    const detect_rule **alert_rules;
    uint32_t *alert_events; /* the event's position in its batch (automatic response) */
    uint32_t *body_offsets;
    uint32_t alert_count, alert_cap;
    buf bodies;
    mark_set marks;
    int64_t last_marks_flush_ms;
    /* correlations: hits of pending batches, alerts of fed ones not written yet */
    corr_hit *hits;
    uint32_t hit_count, hit_cap;
    corr_alerts corr_out;
    corr_records rekeyed; /* matches for the matches topic, sent before their batches are released */
    bool corr_inflight;
    corr_checkpoint ckpt;
    store_alert *combined; /* single-event then correlation alerts of one write */
    bool *combined_written;
    uint32_t combined_cap;
    /* the group of batches being evaluated (evaluate_group): one detect_eval_batch call over
     * their events laid end to end; on_match follows the batch an event index falls in */
    bus_batch **group;
    uint32_t group_count, group_at;   /* batches in the group; the one being matched */
    uint32_t group_base, group_end;   /* that batch's events: group indices [base, end) */
    uint32_t group_first_alert[DETECT_POLL_BATCHES], group_first_hit[DETECT_POLL_BATCHES];
    mamori_event *group_events;       /* the group's events, copied end to end (2+ batches) */
    uint32_t group_events_cap;
    bus_batch *batch;                 /* group[group_at] */
    corr_gen *batch_corr;
    uint32_t batch_alerts;
    int64_t now_us;
} thread_state;

/* ---- watermarks ---- */

static void marks_init(mark_set *m)
{
    memset(m, 0, sizeof *m);
    m->mask = 255;
    m->table = mamori_xcalloc(m->mask + 1, sizeof *m->table);
}

static void marks_fini(mark_set *m)
{
    free(m->v);
    free(m->table);
}

static uint32_t mark_slot(const mark_set *m, uint64_t th, uint64_t ah)
{
    return (uint32_t)((ah ^ (th * 0x9E3779B97F4A7C15ull)) >> 17) & m->mask;
}

static void marks_rehash(mark_set *m)
{
    memset(m->table, 0, (m->mask + 1) * sizeof *m->table);
    for (uint32_t i = 0; i < m->count; i++) {
        uint32_t s = mark_slot(m, m->v[i].tenant_hash, m->v[i].agent_hash);
        while (m->table[s]) s = (s + 1) & m->mask;
        m->table[s] = i + 1;
    }
}

static void marks_note(mark_set *m, const bus_batch *b)
{
    uint32_t s = mark_slot(m, b->tenant_hash, b->agent_hash);
    for (; m->table[s]; s = (s + 1) & m->mask) {
        store_detect_mark *e = &m->v[m->table[s] - 1];
        if (e->tenant_hash == b->tenant_hash && e->agent_hash == b->agent_hash) {
            if (b->seq > e->seq) {
                e->seq = b->seq;
                e->received_us = b->received_us;
            }
            return;
        }
    }
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v = mamori_xrealloc(m->v, m->cap * sizeof *m->v);
    }
    m->v[m->count] = (store_detect_mark){b->tenant_hash, b->agent_hash, b->seq, b->received_us};
    m->table[s] = ++m->count;
    if (m->count * 2 > m->mask) {
        m->mask = m->mask * 2 + 1;
        m->table = mamori_xrealloc(m->table, (m->mask + 1) * sizeof *m->table);
        marks_rehash(m);
    }
}

static void marks_clear(mark_set *m)
{
    if (!m->count) return;
    m->count = 0;
    memset(m->table, 0, (m->mask + 1) * sizeof *m->table);
}

/* ---- evaluation ---- */

static void reserve_alerts(thread_state *s, uint32_t more)
{
    if (s->alert_count + more <= s->alert_cap) return;
    uint32_t cap = s->alert_cap ? s->alert_cap : 64;
    while (cap < s->alert_count + more) cap *= 2;
    s->alerts = mamori_xrealloc(s->alerts, cap * sizeof *s->alerts);
    s->alert_rules = mamori_xrealloc(s->alert_rules, cap * sizeof *s->alert_rules);
    s->alert_events = mamori_xrealloc(s->alert_events, cap * sizeof *s->alert_events);
    s->body_offsets = mamori_xrealloc(s->body_offsets, cap * sizeof *s->body_offsets);
    s->alert_cap = cap;
}

/* Makes group[j] the batch being matched: its alerts and hits start at the current counts. */
static void enter_batch(thread_state *s, uint32_t j)
{
    s->group_at = j;
    s->batch = s->group[j];
    s->group_base = j ? s->group_end : 0;
    s->group_end = s->group_base + s->batch->event_count;
    s->group_first_alert[j] = s->alert_count;
    s->group_first_hit[j] = s->hit_count;
    s->batch_alerts = 0;
}

static void on_match(void *ctx, size_t group_index, const detect_rule *rule)
{
    thread_state *s = ctx;
    while (group_index >= s->group_end) enter_batch(s, s->group_at + 1); /* matches come in event order */
    bus_batch *b = s->batch;
    size_t event_index = group_index - s->group_base;
    if (corr_gen_uses(s->batch_corr, rule)) {
        if (s->hit_count == s->hit_cap) {
            s->hit_cap = s->hit_cap ? s->hit_cap * 2 : 256;
            s->hits = mamori_xrealloc(s->hits, s->hit_cap * sizeof *s->hits);
        }
        s->hits[s->hit_count++] = (corr_hit){(uint32_t)event_index, rule};
        /* a rule correlations use alerts alone only when one of them says generate: true */
        if (!corr_gen_standalone(s->batch_corr, rule)) return;
    }
    if (s->batch_alerts == s->rt->cfg->detect.max_alerts_per_batch) {
        atomic_fetch_add_explicit(&s->t->counters.alerts_dropped, 1, memory_order_relaxed);
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1,
                        "agent %s batch %llu: over detect.max_alerts_per_batch (%u): rule %s hit dropped", b->agent_id,
                        (unsigned long long)b->seq, s->rt->cfg->detect.max_alerts_per_batch, rule->id);
        return;
    }
    reserve_alerts(s, 1);
    const mamori_event *ev = &b->events[event_index];
    alert_source src = {.tenant = b->tenant, .tenant_hash = b->tenant_hash, .agent_id = b->agent_id,
                        .agent_hash = b->agent_hash, .seq = b->seq, .received_us = b->received_us, .ev = ev,
                        .ts_us = ev->ts_us, .rule = rule, .now_us = s->now_us};
    uint32_t i = s->alert_count++;
    alert_record_build(&src, &s->alerts[i], &s->body_offsets[i], &s->bodies);
    s->alert_rules[i] = rule;
    s->alert_events[i] = (uint32_t)event_index;
    s->batch_alerts++;
}

static void add_worker_stats(thread_state *s)
{
    detect_worker_stats now;
    detect_worker_stats_get(s->worker, &now);
    detect_counters *c = &s->t->counters;
    atomic_fetch_add_explicit(&c->events, now.events - s->last_stats.events, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->scans, now.scans - s->last_stats.scans, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->memo_hits, now.memo_hits - s->last_stats.memo_hits, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->candidates, now.candidates - s->last_stats.candidates, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->matches, now.matches - s->last_stats.matches, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->scan_errors, now.scan_errors - s->last_stats.scan_errors, memory_order_relaxed);
    s->last_stats = now;
}

/* Binds the worker to the slot's current rule set (retrying while Hyperscan cannot allocate
 * scratch: the batch waits, it is not skipped). Returns a reference the caller keeps. */
static detect_ruleset *current_ruleset(thread_state *s, corr_gen **corr)
{
    uint32_t backoff_ms = 50;
    for (;;) {
        detect_ruleset *rs = corr_rt_acquire(s->rt->corr, s->rt->slot, corr);
        MAMORI_ASSERT(rs); /* the loader put one in before releasing the threads */
        uint64_t gen = detect_ruleset_generation(rs);
        if (gen == s->bound_generation) return rs;
        if (detect_worker_bind(s->worker, rs) == 0) {
            s->bound_generation = gen;
            /* bind does not reset the worker's counters */
            return rs;
        }
        detect_ruleset_unref(rs);
        corr_gen_unref(*corr);
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "thread %u: cannot bind rule set generation %llu; retrying",
                        s->t->no, (unsigned long long)gen);
        struct timespec ts = {0, (long)backoff_ms * 1000000L};
        nanosleep(&ts, NULL);
        if (backoff_ms < 1000) backoff_ms *= 2;
    }
}

/* Evaluates bs[0..k) (k >= 1) with one rule set and one detect_eval_batch call over their
 * events laid end to end: an agent's batch is often a few events (many agents, each sending
 * little), and the engine's per-call work (the deferred databases' scans, docs/detection.md
 * §6) is paid per call, not per event. Each batch still gets its own pending entry, alerts
 * and hits. */
static void evaluate_group(thread_state *s, bus_batch **bs, uint32_t k)
{
    if (s->pending_count + k > s->pending_cap) {
        while (s->pending_count + k > s->pending_cap) s->pending_cap = s->pending_cap ? s->pending_cap * 2 : 64;
        s->pending = mamori_xrealloc(s->pending, s->pending_cap * sizeof *s->pending);
    }
    corr_gen *corr = NULL;
    detect_ruleset *rs = current_ruleset(s, &corr);
    if (atomic_load_explicit(&s->rt->degraded, memory_order_acquire)) {
        /* no rule set could be built: the batches only wait for their durability, and the
         * first good build re-detects them from the store (their watermark does not move) */
        for (uint32_t j = 0; j < k; j++)
            s->pending[s->pending_count++] = (pending){.batch = bs[j], .rs = j ? detect_ruleset_ref(rs) : rs,
                                                       .corr = j ? corr_gen_ref(corr) : corr,
                                                       .first_alert = s->alert_count, .first_hit = s->hit_count,
                                                       .corr_fed = true, .skipped = true};
        atomic_fetch_add_explicit(&s->t->counters.skipped, k, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->t->counters.pending, k, memory_order_relaxed);
        return;
    }
    const mamori_event *events = bs[0]->events;
    uint32_t total = 0;
    for (uint32_t j = 0; j < k; j++) total += bs[j]->event_count;
    if (k > 1 && total) { /* the events' structs side by side; their fields stay where they are */
        if (total > s->group_events_cap) {
            s->group_events_cap = MAMORI_MAX(total, s->group_events_cap * 2);
            s->group_events = mamori_xrealloc(s->group_events, s->group_events_cap * sizeof *s->group_events);
        }
        uint32_t at = 0;
        for (uint32_t j = 0; j < k; j++) {
            if (bs[j]->event_count) memcpy(s->group_events + at, bs[j]->events, bs[j]->event_count * sizeof *bs[j]->events);
            at += bs[j]->event_count;
        }
        events = s->group_events;
    }
    s->group = bs;
    s->group_count = k;
    s->batch_corr = corr;
    s->now_us = clock_wall_us();
    enter_batch(s, 0);
    int64_t t0 = clock_mono_us();
    /* an empty rule set (no rules configured) costs nothing per event: not even routing */
    if (total && detect_ruleset_rule_count(rs)) detect_eval_batch(s->worker, events, total, on_match, s);
    while (s->group_at + 1 < k) enter_batch(s, s->group_at + 1);
    detect_counters *c = &s->t->counters;
    atomic_fetch_add_explicit(&c->eval_us_sum, (uint64_t)(clock_mono_us() - t0), memory_order_relaxed);
    atomic_fetch_add_explicit(&c->batches, k, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->eval_calls, 1, memory_order_relaxed);
    add_worker_stats(s);
    for (uint32_t j = 0; j < k; j++) {
        uint32_t alert_end = j + 1 < k ? s->group_first_alert[j + 1] : s->alert_count;
        uint32_t hit_end = j + 1 < k ? s->group_first_hit[j + 1] : s->hit_count;
        s->pending[s->pending_count++] = (pending){
            .batch = bs[j], .rs = j ? detect_ruleset_ref(rs) : rs, .corr = j ? corr_gen_ref(corr) : corr,
            .first_alert = s->group_first_alert[j], .alert_count = alert_end - s->group_first_alert[j],
            .first_hit = s->group_first_hit[j], .hit_count = hit_end - s->group_first_hit[j]};
    }
    atomic_fetch_add_explicit(&c->pending, k, memory_order_relaxed);
    s->group = NULL;
    s->group_count = 0;
    s->batch = NULL;
    s->batch_corr = NULL;
}

/* Evaluates the polled batches in groups of up to DETECT_GROUP_EVENTS events (a larger batch
 * alone), in their order. */
static void evaluate(thread_state *s, bus_batch **bs, uint32_t n)
{
    for (uint32_t i = 0; i < n;) {
        uint32_t k = 1, events = bs[i]->event_count;
        while (i + k < n && events + bs[i + k]->event_count <= DETECT_GROUP_EVENTS) events += bs[i + k++]->event_count;
        evaluate_group(s, bs + i, k);
        i += k;
    }
}

/* ---- commit ---- */

static bool is_durable(thread_state *s, const bus_batch *b)
{
    if (s->rt->durable_on_publish) return true; /* in Kafka (acks=all) before we saw it */
    uint64_t durable = 0;
    if (store_agent_durable_seq(s->rt->db, b->tenant_hash, b->agent_hash, &durable) != 0) return false;
    return durable >= b->seq;
}

/* Drops pending[0..k) and their alerts (their memory moves down); done: their work is complete
 * (else they are abandoned: Kafka delivers them again). */
static void release(thread_state *s, uint32_t k, bool done)
{
    if (k == 0) return;
    uint32_t alerts = 0, hits = 0;
    for (uint32_t i = 0; i < k; i++) {
        bus_batch *b = s->pending[i].batch;
        if (done) bus_done(s->t->consumer, &b, 1);
        else bus_abandon(s->t->consumer, &b, 1);
        detect_ruleset_unref(s->pending[i].rs);
        corr_gen_unref(s->pending[i].corr);
        alerts += s->pending[i].alert_count;
        hits += s->pending[i].hit_count;
    }
    if (hits) {
        memmove(s->hits, s->hits + hits, (s->hit_count - hits) * sizeof *s->hits);
        s->hit_count -= hits;
        for (uint32_t i = k; i < s->pending_count; i++) s->pending[i].first_hit -= hits;
    }
    atomic_fetch_sub_explicit(&s->t->counters.pending, k, memory_order_relaxed);
    memmove(s->pending, s->pending + k, (s->pending_count - k) * sizeof *s->pending);
    s->pending_count -= k;
    if (alerts) {
        uint32_t body_cut = alerts < s->alert_count ? s->body_offsets[alerts] : (uint32_t)s->bodies.len;
        memmove(s->bodies.data, s->bodies.data + body_cut, s->bodies.len - body_cut);
        s->bodies.len -= body_cut;
        uint32_t rest = s->alert_count - alerts;
        memmove(s->alerts, s->alerts + alerts, rest * sizeof *s->alerts);
        memmove(s->alert_rules, s->alert_rules + alerts, rest * sizeof *s->alert_rules);
        memmove(s->alert_events, s->alert_events + alerts, rest * sizeof *s->alert_events);
        memmove(s->body_offsets, s->body_offsets + alerts, rest * sizeof *s->body_offsets);
        for (uint32_t i = 0; i < rest; i++) s->body_offsets[i] -= body_cut;
        s->alert_count = rest;
        for (uint32_t i = 0; i < s->pending_count; i++) s->pending[i].first_alert -= alerts;
    }
}

static void note_latency(detect_counters *c, int64_t lat)
{
    uint64_t us = lat > 0 ? (uint64_t)lat : 0;
    unsigned b = 0;
    while (b < DETECT_LATENCY_BUCKETS - 1 && us > detect_latency_bucket_us[b]) b++;
    atomic_fetch_add_explicit(&c->latency_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->latency_us_sum, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->latency_count, 1, memory_order_relaxed);
}

static void record_written(thread_state *s, uint32_t alerts, int64_t now_us)
{
    detect_counters *c = &s->t->counters;
    uint32_t written = 0;
    for (uint32_t p = 0, a = 0; a < alerts; a++) {
        while (a >= s->pending[p].first_alert + s->pending[p].alert_count) p++;
        if (!s->combined_written[a]) continue;
        written++;
        detect_rule_count(s->rt, s->alert_rules[a], 1);
        const bus_batch *batch = s->pending[p].batch;
        detect_response_hook(s->rt, batch, &batch->events[s->alert_events[a]], s->alert_rules[a]);
        note_latency(c, now_us - s->pending[p].batch->received_us);
    }
    /* correlation alerts: received = the batch whose match completed the correlation */
    for (uint32_t i = 0; i < s->corr_out.count; i++) {
        if (!s->combined_written[alerts + i]) continue;
        written++;
        detect_rule_count(s->rt, s->corr_out.rules[i], 1);
        detect_response_corr(s->rt, &s->corr_out, i);
        note_latency(c, now_us - s->corr_out.received_us[i]);
    }
    uint32_t total = alerts + s->corr_out.count;
    atomic_fetch_add_explicit(&c->alerts_written, written, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->alerts_existing, total - written, memory_order_relaxed);
}

/* Feeds the durable batches [0, k) not fed yet to the correlations (each agent's batches in
 * order, each batch once) and takes a checkpoint when one is due. */
static void feed_correlations(thread_state *s, uint32_t k)
{
    corr_rt *cr = s->rt->corr;
    bool fed = false;
    corr_rt_lock(cr);
    for (uint32_t i = 0; i < k; i++) {
        pending *p = &s->pending[i];
        if (p->corr_fed) continue;
        p->corr_fed = true;
        fed = true;
        const bus_batch *b = p->batch;
        if (!corr_rt_batch_begin(cr, b->tenant_hash, b->agent_hash, b->seq)) continue;
        int64_t now_us = clock_wall_us();
        for (uint32_t h = p->first_hit; h < p->first_hit + p->hit_count; h++) {
            const mamori_event *ev = &b->events[s->hits[h].event_index];
            alert_source src = {.tenant = b->tenant, .tenant_hash = b->tenant_hash, .agent_id = b->agent_id,
                                .agent_hash = b->agent_hash, .seq = b->seq, .received_us = b->received_us,
                                .ev = ev, .ts_us = ev->ts_us, .rule = s->hits[h].rule, .now_us = now_us};
            corr_rt_feed(cr, p->corr, &src, &s->corr_out, &s->rekeyed);
        }
        corr_rt_batch_end(cr, b->tenant_hash, b->agent_hash, b->seq, b->received_us);
    }
    if (s->corr_out.count && !s->corr_inflight) {
        corr_rt_inflight(cr, 1);
        s->corr_inflight = true;
    }
    /* Kafka: releasing these batches commits their offsets and a crash does not deliver them
     * again, so the checkpoint must cover them first: one with every write that fed */
    bool force = fed && s->rt->durable_on_publish;
    if (!s->ckpt.taken) (void)corr_rt_checkpoint_take(cr, force, s->corr_inflight, &s->ckpt);
    corr_rt_unlock(cr);
}

/* Re-keying: the matches of the batches fed are on the broker before those batches are
 * released (their offsets committed), so a crash redelivers the batches rather than losing
 * the matches (at-least-once). Kept and sent again after a failure. */
static int send_rekeyed(thread_state *s)
{
    corr_records *r = &s->rekeyed;
    if (r->count == 0) return 0;
    bus_record *recs = mamori_xcalloc(r->count, sizeof *recs);
    for (uint32_t i = 0; i < r->count; i++) {
        const struct corr_record_at *at = &r->v[i];
        recs[i] = (bus_record){.key = r->data.data + at->key_off, .key_len = at->key_len,
                               .value = r->data.data + at->val_off, .value_len = at->val_len,
                               .meta = r->data.data + at->meta_off, .meta_len = at->meta_len};
    }
    int rc = bus_send_records_on(s->rt->bus, BUS_RECORDS_MATCHES, recs, r->count, 10000);
    free(recs);
    if (rc == 0) corr_records_clear(r);
    return rc;
}

/* Split roles: the alerts of pending[..] go to the store shards as records keyed by their
 * agent (alert_transport.c); returns once the broker has all of them. */
static int send_alerts(thread_state *s, uint32_t alerts, uint32_t *written)
{
    *written = 0;
    if (alerts == 0) return 0;
    bus_record *recs = mamori_xcalloc(alerts, sizeof *recs);
    uint8_t(*meta)[ALERT_META_BYTES] = mamori_xcalloc(alerts, sizeof *meta);
    buf keys;
    buf_init(&keys);
    uint32_t *key_at = mamori_xcalloc(alerts, sizeof *key_at);
    for (uint32_t p = 0, a = 0; a < alerts; a++) {
        while (a >= s->pending[p].first_alert + s->pending[p].alert_count) p++;
        const bus_batch *b = s->pending[p].batch;
        key_at[a] = (uint32_t)keys.len;
        buf_printf(&keys, "%s/%s", b->tenant, b->agent_id);
        recs[a].key_len = keys.len - key_at[a];
        recs[a].meta_len = alert_meta_encode(&s->alerts[a], meta[a]);
        recs[a].meta = meta[a];
        recs[a].value = s->alerts[a].body;
        recs[a].value_len = s->alerts[a].body_len;
    }
    for (uint32_t a = 0; a < alerts; a++) recs[a].key = keys.data + key_at[a]; /* keys.data may have moved */
    int rc = bus_send_records(s->rt->bus, recs, alerts, 10000);
    for (uint32_t a = 0; a < alerts; a++) s->combined_written[a] = rc == 0;
    if (rc == 0) *written = alerts;
    free(key_at);
    buf_fini(&keys);
    free(meta);
    free(recs);
    return rc;
}

static int cmp_agent_key(const void *x, const void *y)
{
    const detect_agent_key *a = x, *b = y;
    if (a->tenant_hash != b->tenant_hash) return a->tenant_hash < b->tenant_hash ? -1 : 1;
    return a->agent_hash < b->agent_hash ? -1 : a->agent_hash > b->agent_hash;
}

/* Does the batch's watermark move? Not for a batch taken without rules, nor for an agent
 * whose re-detection could not be written (rt->held: the next start re-detects from the
 * watermark it has). */
static bool moves_mark(const detect_rt *rt, const pending *p)
{
    if (p->skipped) return false;
    if (!rt->held_count) return true;
    detect_agent_key key = {p->batch->tenant_hash, p->batch->agent_hash};
    return !bsearch(&key, rt->held, rt->held_count, sizeof key, cmp_agent_key);
}

/* Writes what is ready. Returns false after a failed write (the caller backs off). */
static bool commit_ready(thread_state *s, bool force_marks)
{
    uint32_t k = 0, alerts = 0;
    while (k < s->pending_count && is_durable(s, s->pending[k].batch)) {
        alerts += s->pending[k].alert_count;
        k++;
    }
    if (!s->rt->alerts_to_bus || corr_rt_rekey(s->rt->corr) != CORR_REKEY_OFF) feed_correlations(s, k);
    int sent = send_rekeyed(s);
    if (sent) {
        atomic_fetch_add_explicit(&s->t->counters.commit_errors, 1, memory_order_relaxed);
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "thread %u: publishing %u re-keyed correlation matches failed, retrying: %s",
                        s->t->no, s->rekeyed.count, strerror(-sent));
        return false;
    }
    for (uint32_t i = 0; i < k; i++)
        if (moves_mark(s->rt, &s->pending[i])) marks_note(&s->marks, s->pending[i].batch);
    int64_t now_ms = clock_mono_ms();
    bool marks_due = s->marks.count &&
                     (force_marks || now_ms - s->last_marks_flush_ms >= (int64_t)s->rt->cfg->detect.checkpoint_interval_ms);
    uint32_t corr_n = s->corr_out.count;
    bool ckpt = s->ckpt.taken;
    if (alerts == 0 && corr_n == 0 && !marks_due && !ckpt) {
        release(s, k, true);
        return true;
    }
    /* created = when the alert is written (its batch is durable by now) */
    int64_t created_us = clock_wall_us();
    uint32_t total = alerts + corr_n;
    if (total > s->combined_cap) {
        s->combined_cap = MAMORI_MAX(total, s->combined_cap * 2);
        s->combined = mamori_xrealloc(s->combined, s->combined_cap * sizeof *s->combined);
        s->combined_written = mamori_xrealloc(s->combined_written, s->combined_cap * sizeof *s->combined_written);
    }
    for (uint32_t i = 0; i < alerts; i++) {
        s->alerts[i].body = s->bodies.data + s->body_offsets[i];
        s->alerts[i].created_us = s->alerts[i].updated_us = created_us;
        s->combined[i] = s->alerts[i];
    }
    corr_alerts_fix(&s->corr_out);
    for (uint32_t i = 0; i < corr_n; i++) {
        s->corr_out.v[i].created_us = s->corr_out.v[i].updated_us = created_us;
        s->combined[alerts + i] = s->corr_out.v[i];
    }
    uint32_t written = 0;
    int64_t t0 = clock_mono_us();
    /* split roles (no correlations there, detect_corr.c): alerts go to the store shards */
    int rc = s->rt->alerts_to_bus             ? send_alerts(s, alerts, &written)
             : failpoint("detect.commit") ? -EIO /* a test hook, README */
                                          : store_alerts_commit_state(s->rt->db, s->combined, total, s->marks.v,
                                                                      s->marks.count, ckpt ? &s->ckpt.write : NULL,
                                                                      s->combined_written, &written);
    detect_counters *c = &s->t->counters;
    if (ckpt) corr_rt_checkpoint_done(s->rt->corr, &s->ckpt, rc == 0, clock_mono_us() - t0);
    if (rc) {
        atomic_fetch_add_explicit(&c->commit_errors, 1, memory_order_relaxed);
        LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "thread %u: writing %u alerts failed, retrying: %s", s->t->no, total,
                        strerror(-rc));
        return false;
    }
    atomic_fetch_add_explicit(&c->commits, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->marks_written, s->marks.count, memory_order_relaxed);
    record_written(s, alerts, clock_wall_us());
    if (s->corr_inflight) {
        corr_rt_lock(s->rt->corr);
        corr_rt_inflight(s->rt->corr, -1);
        corr_rt_unlock(s->rt->corr);
        s->corr_inflight = false;
    }
    corr_alerts_clear(&s->corr_out);
    marks_clear(&s->marks);
    s->last_marks_flush_ms = now_ms;
    release(s, k, true);
    return true;
}

/* ---- the thread ---- */

/* The loader asked the threads to stop between groups (the first good build after a failed
 * one): wait until it is done, then evaluate with the new set the batches taken without
 * rules that this thread still holds. Those not durable when the loader listed the gap are
 * not in its re-detection; those that were are evaluated twice, which adds nothing (alert
 * ids are deterministic, correlations skip batches fed already). */
static void pause_here(thread_state *s)
{
    detect_rt *rt = s->rt;
    if (!atomic_load_explicit(&rt->pause, memory_order_acquire)) return;
    pthread_mutex_lock(&rt->mu);
    rt->paused++;
    pthread_cond_broadcast(&rt->cv);
    while (rt->pause && !rt->stopping) pthread_cond_wait(&rt->cv, &rt->mu);
    rt->paused--;
    pthread_mutex_unlock(&rt->mu);
    uint32_t n = 0;
    while (n < s->pending_count && s->pending[n].skipped) n++;
    if (n == 0 || atomic_load_explicit(&rt->degraded, memory_order_acquire)) return;
    /* a skipped batch has no alerts, hits or marks: only its references to drop */
    bus_batch **again = mamori_xcalloc(n, sizeof *again);
    for (uint32_t i = 0; i < n; i++) {
        again[i] = s->pending[i].batch;
        detect_ruleset_unref(s->pending[i].rs);
        corr_gen_unref(s->pending[i].corr);
    }
    memmove(s->pending, s->pending + n, (s->pending_count - n) * sizeof *s->pending);
    s->pending_count -= n;
    atomic_fetch_sub_explicit(&s->t->counters.pending, n, memory_order_relaxed);
    MAMORI_ASSERT(s->pending_count == 0); /* nothing is evaluated with rules before the set is in */
    LOG_INFO(MOD, "thread %u: %u batches taken without rules and still held at the switch, evaluated now", s->t->no, n);
    evaluate(s, again, n);
    free(again);
}

static void thread_exited(detect_rt *rt)
{
    pthread_mutex_lock(&rt->mu);
    rt->exited++;
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
}

/* Waits for the first rule set and the start-up re-detection; false if the runtime stops
 * before (only when starting it failed half-way). */
static bool wait_ready(detect_rt *rt)
{
    pthread_mutex_lock(&rt->mu);
    while (!rt->ready && !rt->stopping) pthread_cond_wait(&rt->cv, &rt->mu);
    bool ready = rt->ready;
    pthread_mutex_unlock(&rt->mu);
    return ready;
}

static void *thread_main(void *arg)
{
    detect_thread *t = arg;
    char name[16];
    snprintf(name, sizeof name, "detect-%u", t->no);
    pthread_setname_np(pthread_self(), name);
    if (!wait_ready(t->rt)) {
        thread_exited(t->rt);
        return NULL;
    }
    thread_state s = {.t = t, .rt = t->rt, .worker = detect_worker_create(), .last_marks_flush_ms = clock_mono_ms()};
    buf_init(&s.bodies);
    corr_alerts_init(&s.corr_out);
    corr_records_init(&s.rekeyed);
    corr_checkpoint_init(&s.ckpt);
    marks_init(&s.marks);
    bus_batch *polled[DETECT_POLL_BATCHES];
    bool draining = false;
    int64_t deadline_ms = 0;
    uint32_t backoff_ms = 0;
    for (;;) {
        int n = 0;
        if (!draining) pause_here(&s);
        if (!draining) {
            n = bus_poll(t->consumer, polled, DETECT_POLL_BATCHES, s.pending_count ? 2 : 100);
            if (n == -ESHUTDOWN) {
                draining = true;
                deadline_ms = clock_mono_ms() + DETECT_SHUTDOWN_WAIT_MS;
            }
            if (n < 0) n = 0;
        }
        if (n > 0) evaluate(&s, polled, (uint32_t)n);
        if (backoff_ms) {
            struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        bool ok = commit_ready(&s, draining && s.pending_count == 0);
        backoff_ms = ok ? 0 : (backoff_ms ? MAMORI_MIN(backoff_ms * 2, 5000u) : 50u);
        if (!draining) continue;
        if (s.pending_count == 0 && s.marks.count == 0 && s.corr_out.count == 0) break;
        if (clock_mono_ms() > deadline_ms) {
            /* never durable, or their alerts and watermarks could not be written (the store
             * kept failing): not marked detected, so the next start-up re-detects whatever the
             * store did keep (Kafka: they are not committed, so the group delivers them again) */
            LOG_ERROR(MOD,
                      "thread %u: shutdown: %u batches not done (never durable, or their alerts and watermarks could "
                      "not be written): not marked detected, the next start re-detects them",
                      t->no, s.pending_count);
            /* correlation alerts still held stay "in flight": no later checkpoint may cover
             * the state that consumed their matches, so the next start replays them */
            release(&s, s.pending_count, false);
            break;
        }
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    marks_fini(&s.marks);
    buf_fini(&s.bodies);
    free(s.pending);
    free(s.alerts);
    free(s.alert_rules);
    free(s.alert_events);
    free(s.body_offsets);
    free(s.hits);
    free(s.combined);
    free(s.combined_written);
    free(s.group_events);
    corr_alerts_fini(&s.corr_out);
    corr_records_fini(&s.rekeyed);
    corr_checkpoint_fini(&s.ckpt);
    detect_worker_destroy(s.worker);
    thread_exited(t->rt);
    return NULL;
}

int detect_threads_start(detect_rt *rt)
{
    rt->threads = mamori_xcalloc(rt->thread_count, sizeof *rt->threads);
    for (uint32_t i = 0; i < rt->thread_count; i++) {
        detect_thread *t = &rt->threads[i];
        t->rt = rt;
        t->no = i;
        int rc = bus_consumer_open(rt->bus, "detect", i, &t->consumer);
        if (rc == 0) {
            rc = -pthread_create(&t->thread, NULL, thread_main, t);
            if (rc) bus_consumer_close(t->consumer);
        }
        if (rc) {
            LOG_ERROR(MOD, "cannot start detection thread %u: %s", i, strerror(-rc));
            return rc;
        }
        t->started = true;
    }
    return 0;
}

void detect_threads_join(detect_rt *rt)
{
    for (uint32_t i = 0; rt->threads && i < rt->thread_count; i++) {
        detect_thread *t = &rt->threads[i];
        if (!t->started) continue;
        pthread_join(t->thread, NULL);
        bus_consumer_close(t->consumer);
        t->started = false;
    }
}

void detect_threads_sum(detect_rt *rt, detect_counters *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; rt->threads && i < rt->thread_count; i++) {
        const _Atomic uint64_t *src = (const _Atomic uint64_t *)&rt->threads[i].counters;
        _Atomic uint64_t *dst = (_Atomic uint64_t *)out;
        for (size_t k = 0; k < sizeof *out / sizeof(uint64_t); k++)
            atomic_store_explicit(&dst[k], atomic_load_explicit(&dst[k], memory_order_relaxed) +
                                               atomic_load_explicit(&src[k], memory_order_relaxed),
                                  memory_order_relaxed);
    }
}
