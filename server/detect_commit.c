/* server/detect_commit.c — the second half of a detection thread (detect_thread.c): once
 * the store has made a batch durable (on Kafka: at once), feed its matches to the
 * correlations, write its alerts with the agents' "detected up to" watermarks in one RocksDB
 * write (split roles: send them to the store shards), and release it to the bus. Watermarks
 * of batches without alerts are written every detect.checkpoint_interval_ms. */
#include "detect_thread_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/failpoint.h"
#include "core/log.h"

#define MOD "detect"

/* ---- watermarks ---- */

void detect_marks_init(mark_set *m)
{
    memset(m, 0, sizeof *m);
    m->mask = 255;
    m->table = mamori_xcalloc(m->mask + 1, sizeof *m->table);
}

void detect_marks_fini(mark_set *m)
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
void detect_release(thread_state *s, uint32_t k, bool done)
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

/* Does the batch's watermark move? Not for a batch taken without rules, nor for an agent
 * whose re-detection could not be written (rt->held: the next start re-detects from the
 * watermark it has). */
static bool moves_mark(const detect_rt *rt, const pending *p)
{
    return !p->skipped && !detect_agent_held(rt, p->batch->tenant_hash, p->batch->agent_hash);
}

/* Writes what is ready. Returns false after a failed write (the caller backs off). */
bool detect_commit_ready(thread_state *s, bool force_marks)
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
        detect_release(s, k, true);
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
    detect_release(s, k, true);
    return true;
}
