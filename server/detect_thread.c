/* server/detect_thread.c — one detection thread per partition of the bus group "detect".
 * Per group of polled batches (consecutive ones, up to DETECT_GROUP_EVENTS events): take the
 * current rule set from the slot (the group boundary is the swap point: a batch is evaluated
 * whole with one rule set, never twice, never skipped), evaluate the group's events with this
 * thread's worker in one call, and keep each batch's alerts until the store has made the batch
 * durable; then write them, with the agents' "detected up to" watermarks, in one RocksDB
 * write, and release the batch. Batches without alerts only move the watermarks, which are
 * written every detect.checkpoint_interval_ms. Acks never wait for any of this. On Kafka a
 * consumed batch is durable already: its alerts are written at once, and releasing it (the
 * offset commit) is what marks it detected — never before its alerts are written. Writing and
 * releasing: detect_commit.c. */
#include "detect_thread_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "detect"

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
    /* no rule set could be built: the batches only wait for their durability, and the first
     * good build re-detects them from the store (their watermark does not move) */
    bool skipped = atomic_load_explicit(&s->rt->degraded, memory_order_acquire);
    const mamori_event *events = bs[0]->events;
    uint32_t total = 0;
    for (uint32_t j = 0; j < k; j++) total += bs[j]->event_count;
    if (k > 1 && total && !skipped) { /* the events' structs side by side; their fields stay where they are */
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
    if (total && !skipped && detect_ruleset_rule_count(rs)) detect_eval_batch(s->worker, events, total, on_match, s);
    while (s->group_at + 1 < k) enter_batch(s, s->group_at + 1);
    detect_counters *c = &s->t->counters;
    if (skipped) {
        atomic_fetch_add_explicit(&c->skipped, k, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&c->eval_us_sum, (uint64_t)(clock_mono_us() - t0), memory_order_relaxed);
        atomic_fetch_add_explicit(&c->batches, k, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->eval_calls, 1, memory_order_relaxed);
        add_worker_stats(s);
    }
    for (uint32_t j = 0; j < k; j++) {
        uint32_t alert_end = j + 1 < k ? s->group_first_alert[j + 1] : s->alert_count;
        uint32_t hit_end = j + 1 < k ? s->group_first_hit[j + 1] : s->hit_count;
        s->pending[s->pending_count++] = (pending){
            .batch = bs[j], .rs = j ? detect_ruleset_ref(rs) : rs, .corr = j ? corr_gen_ref(corr) : corr,
            .first_alert = s->group_first_alert[j], .alert_count = alert_end - s->group_first_alert[j],
            .first_hit = s->group_first_hit[j], .hit_count = hit_end - s->group_first_hit[j],
            .corr_fed = skipped, .skipped = skipped};
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
    uint32_t n = s->pending_count;
    if (n == 0 || atomic_load_explicit(&rt->degraded, memory_order_acquire)) return;
    /* every batch this thread holds was taken without rules (nothing is evaluated with rules
     * before the set is in); a skipped batch has no alerts, hits or marks: only its
     * references to drop */
    bus_batch **again = mamori_xcalloc(n, sizeof *again);
    for (uint32_t i = 0; i < n; i++) {
        MAMORI_ASSERT(s->pending[i].skipped);
        again[i] = s->pending[i].batch;
        detect_ruleset_unref(s->pending[i].rs);
        corr_gen_unref(s->pending[i].corr);
    }
    s->pending_count = 0;
    atomic_fetch_sub_explicit(&s->t->counters.pending, n, memory_order_relaxed);
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
    detect_marks_init(&s.marks);
    bus_batch *polled[DETECT_POLL_BATCHES];
    bool draining = false;
    int64_t deadline_ms = 0;
    uint32_t backoff_ms = 0;
    for (;;) {
        int n = 0;
        if (!draining) {
            pause_here(&s);
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
        bool ok = detect_commit_ready(&s, draining && s.pending_count == 0);
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
            detect_release(&s, s.pending_count, false);
            break;
        }
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    detect_marks_fini(&s.marks);
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
