/* server/detect_recover.c — closing the crash gap. Acks wait for the store, not for
 * detection, so a crash can leave batches durable but undetected: exactly the batches of an
 * agent with seq in (watermark, durable seq]. Once at start-up, before the detection threads
 * consume (or, when the first build failed, at the first good one with the threads paused:
 * they took batches without rules meanwhile and moved no watermark), this re-reads those
 * batches' events from the store, evaluates them with the first rule set and writes their
 * alerts (same deterministic ids: nothing doubles) and the new watermarks. The store has no
 * (agent, seq) index, so the events are found by a time scan of the tenant from
 * `detect.recovery_lookback_s` before the last watermark write; an undetected event stamped
 * earlier than that is not re-detected (its batch is logged and counted as missing —
 * docs/detection.md "Live detection" states the gap). */
#include "detect_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/failpoint.h"
#include "core/log.h"

#define MOD "detect"
#define RECOVER_COMMIT_ALERTS 1024u
#define TENANT_NAME_MAX 260u

typedef struct agent_gap {
    uint64_t tenant_hash, agent_hash;
    uint64_t from_seq; /* exclusive: the watermark */
    uint64_t corr_from; /* exclusive: fed to correlations up to (the checkpoint), <= or > from_seq */
    uint64_t to_seq;   /* inclusive: the durable seq */
    int64_t mark_received_us; /* 0 when the agent has no watermark */
    int64_t last_received_us; /* newest receive time seen while re-detecting */
    uint64_t *seen_seqs;      /* distinct seqs found (sorted and deduplicated at the end) */
    size_t seen_count, seen_cap;
} agent_gap;

typedef struct recover {
    detect_rt *rt;
    detect_worker *worker;
    agent_gap *gaps;
    size_t gap_count, gap_cap;
    store_detect_mark *marks; /* from the store */
    size_t mark_count, mark_cap;
    /* while scanning one tenant */
    uint64_t tenant_hash;
    char tenant[TENANT_NAME_MAX];
    json_parser *parser;
    normalizer *norm;
    arena arena;
    store_alert *alerts;
    const detect_rule **rules;
    uint32_t *offsets;
    bool *written;
    uint32_t alert_count;
    buf bodies;
    uint64_t events, alerts_new, commit_errors;
    int64_t now_us;
    /* correlations: the batches after the checkpoint are fed again (the state restored) */
    corr_gen *corr;
    corr_alerts corr_out;
    int64_t corr_anchor_us; /* 0: none */
} recover;

static int collect_mark(void *ctx, const store_detect_mark *m)
{
    recover *r = ctx;
    if (r->mark_count == r->mark_cap) {
        r->mark_cap = r->mark_cap ? r->mark_cap * 2 : 256;
        r->marks = mamori_xrealloc(r->marks, r->mark_cap * sizeof *r->marks);
    }
    r->marks[r->mark_count++] = *m;
    return 0;
}

/* (tenant, agent) order, for the binary searches below. */
static int cmp_pair(uint64_t t1, uint64_t a1, uint64_t t2, uint64_t a2)
{
    if (t1 != t2) return t1 < t2 ? -1 : 1;
    return a1 < a2 ? -1 : a1 > a2;
}

static int cmp_mark(const void *x, const void *y)
{
    const store_detect_mark *a = x, *b = y;
    return cmp_pair(a->tenant_hash, a->agent_hash, b->tenant_hash, b->agent_hash);
}

static int cmp_gap(const void *x, const void *y)
{
    const agent_gap *a = x, *b = y;
    return cmp_pair(a->tenant_hash, a->agent_hash, b->tenant_hash, b->agent_hash);
}

static int cmp_agent_key(const void *x, const void *y)
{
    const detect_agent_key *a = x, *b = y;
    return cmp_pair(a->tenant_hash, a->agent_hash, b->tenant_hash, b->agent_hash);
}

bool detect_agent_held(const detect_rt *rt, uint64_t tenant_hash, uint64_t agent_hash)
{
    if (rt->held_all) return true;
    if (!rt->held_count) return false;
    detect_agent_key key = {tenant_hash, agent_hash};
    return bsearch(&key, rt->held, rt->held_count, sizeof key, cmp_agent_key) != NULL;
}

static const store_detect_mark *find_mark(const recover *r, uint64_t th, uint64_t ah)
{
    store_detect_mark key = {.tenant_hash = th, .agent_hash = ah};
    return r->mark_count ? bsearch(&key, r->marks, r->mark_count, sizeof *r->marks, cmp_mark) : NULL;
}

static int collect_gap(void *ctx, uint64_t th, uint64_t ah, uint64_t durable)
{
    recover *r = ctx;
    const store_detect_mark *m = find_mark(r, th, ah);
    uint64_t detected = m ? m->seq : 0;
    uint64_t corr_from = detected;
    int64_t anchor = 0;
    if (corr_rt_checkpoint_mark(r->rt->corr, th, ah, &corr_from, &anchor) && corr_from > durable) corr_from = durable;
    if (durable <= MAMORI_MIN(detected, corr_from)) return 0;
    if (corr_from < detected && anchor && (!r->corr_anchor_us || anchor < r->corr_anchor_us)) r->corr_anchor_us = anchor;
    if (r->gap_count == r->gap_cap) {
        r->gap_cap = r->gap_cap ? r->gap_cap * 2 : 16;
        r->gaps = mamori_xrealloc(r->gaps, r->gap_cap * sizeof *r->gaps);
    }
    r->gaps[r->gap_count++] = (agent_gap){.tenant_hash = th, .agent_hash = ah, .from_seq = MAMORI_MIN(detected, durable),
                                          .corr_from = corr_from, .to_seq = durable,
                                          .mark_received_us = m ? m->received_us : 0};
    return 0;
}

/* First run on this store: detection starts now; what is stored is history, not a gap. */
typedef struct start_marks {
    store_detect_mark *v;
    size_t n, cap;
    int64_t now_us;
} start_marks;

static int add_start_mark(void *ctx, uint64_t th, uint64_t ah, uint64_t durable)
{
    start_marks *s = ctx;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = mamori_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (store_detect_mark){th, ah, durable, s->now_us};
    return 0;
}

static agent_gap *gap_of(recover *r, uint64_t ah)
{
    agent_gap key = {.tenant_hash = r->tenant_hash, .agent_hash = ah};
    return bsearch(&key, r->gaps, r->gap_count, sizeof *r->gaps, cmp_gap);
}

static void note_seq(agent_gap *g, uint64_t seq)
{
    if (g->seen_count && g->seen_seqs[g->seen_count - 1] == seq) return;
    if (g->seen_count == g->seen_cap) {
        g->seen_cap = g->seen_cap ? g->seen_cap * 2 : 64;
        g->seen_seqs = mamori_xrealloc(g->seen_seqs, g->seen_cap * sizeof *g->seen_seqs);
    }
    g->seen_seqs[g->seen_count++] = seq;
}

static void flush_corr_alerts(recover *r)
{
    if (!r->corr_out.count) return;
    corr_alerts_fix(&r->corr_out);
    bool *written = mamori_xcalloc(r->corr_out.count, sizeof *written);
    uint32_t n = 0;
    int rc = failpoint("detect.recover.write") ? -EIO
                                               : store_alerts_commit(r->rt->db, r->corr_out.v, r->corr_out.count, NULL,
                                                                     0, written, &n);
    if (rc) {
        r->commit_errors++;
        LOG_ERROR(MOD, "re-detection: writing %u correlation alerts failed: %s", r->corr_out.count, strerror(-rc));
    } else {
        for (uint32_t i = 0; i < r->corr_out.count; i++)
            if (written[i]) detect_rule_count(r->rt, r->corr_out.rules[i], 1);
        r->alerts_new += n;
    }
    free(written);
    corr_alerts_clear(&r->corr_out);
}

static void flush_alerts(recover *r)
{
    flush_corr_alerts(r);
    if (!r->alert_count) return;
    for (uint32_t i = 0; i < r->alert_count; i++) r->alerts[i].body = r->bodies.data + r->offsets[i];
    uint32_t written = 0;
    int rc = failpoint("detect.recover.write")
                 ? -EIO
                 : store_alerts_commit(r->rt->db, r->alerts, r->alert_count, NULL, 0, r->written, &written);
    if (rc) {
        r->commit_errors++;
        LOG_ERROR(MOD, "re-detection: writing %u alerts failed: %s", r->alert_count, strerror(-rc));
    } else {
        for (uint32_t i = 0; i < r->alert_count; i++)
            if (r->written[i]) detect_rule_count(r->rt, r->rules[i], 1);
        r->alerts_new += written;
    }
    r->alert_count = 0;
    buf_clear(&r->bodies);
}

static int visit_event(void *ctx, const store_event_ref *ref, const char *json, size_t len)
{
    recover *r = ctx;
    agent_gap *g = gap_of(r, ref->agent_hash);
    if (!g || ref->seq <= MAMORI_MIN(g->from_seq, g->corr_from) || ref->seq > g->to_seq) return 0;
    bool detect = ref->seq > g->from_seq;     /* single-event alerts: the watermark's gap */
    bool correlate = ref->seq > g->corr_from; /* correlations: after the checkpoint */
    if (detect) note_seq(g, ref->seq);
    arena_reset(&r->arena);
    json_value root;
    json_error jerr;
    if (json_parse(r->parser, &r->arena, json, len, &root, &jerr) != 0 || root.type != JSON_OBJECT) return 0;
    const json_value *m = json_object_get(&root, "mamori", 6);
    const json_value *agent = m ? json_object_get(m, "agent_id", 8) : NULL;
    const json_value *received = m ? json_object_get(m, "received", 8) : NULL;
    int64_t received_us = 0;
    if (!json_is_string(agent) || !json_is_string(received) ||
        clock_parse_rfc3339(received->str, received->len, &received_us) != 0)
        return 0;
    char *agent_id = arena_strndup(&r->arena, agent->str, agent->len);
    /* the stored JSON is the normalized event: read back as ECS it gives the same fields */
    event_stamp stamp = {.tenant = r->tenant, .agent_id = agent_id, .agent_hash = ref->agent_hash, .seq = ref->seq,
                         .received_us = received_us};
    mamori_event ev;
    char err[128];
    if (normalize_event(r->norm, &r->arena, EVENT_FORMAT_ECS, &root, &stamp, ref->index, &ev, err, sizeof err) != 0) {
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 1, "re-detection: stored event of agent %s seq %llu unreadable: %s",
                        agent_id, (unsigned long long)ref->seq, err);
        return 0;
    }
    ev.ts_us = ref->ts_us;
    r->events++;
    g->last_received_us = MAMORI_MAX(g->last_received_us, received_us);
    const detect_match *matches;
    size_t n = detect_eval(r->worker, &ev, &matches);
    for (size_t i = 0; i < n; i++) {
        if (correlate && corr_gen_uses(r->corr, matches[i].rule)) {
            alert_source src = {.tenant = r->tenant, .tenant_hash = r->tenant_hash, .agent_id = agent_id,
                                .agent_hash = ref->agent_hash, .seq = ref->seq, .received_us = received_us,
                                .ev = &ev, .ts_us = ref->ts_us, .rule = matches[i].rule, .now_us = r->now_us};
            corr_rt_lock(r->rt->corr);
            corr_rt_feed(r->rt->corr, r->corr, &src, &r->corr_out, NULL);
            corr_rt_unlock(r->rt->corr);
            if (!corr_gen_standalone(r->corr, matches[i].rule)) continue;
        }
        if (!detect) continue;
        if (r->alert_count % RECOVER_COMMIT_ALERTS == 0) {
            size_t cap = r->alert_count + RECOVER_COMMIT_ALERTS;
            r->alerts = mamori_xrealloc(r->alerts, cap * sizeof *r->alerts);
            r->rules = mamori_xrealloc(r->rules, cap * sizeof *r->rules);
            r->offsets = mamori_xrealloc(r->offsets, cap * sizeof *r->offsets);
            r->written = mamori_xrealloc(r->written, cap * sizeof *r->written);
        }
        alert_source src = {.tenant = r->tenant, .tenant_hash = r->tenant_hash, .agent_id = agent_id,
                            .agent_hash = ref->agent_hash, .seq = ref->seq, .received_us = received_us, .ev = &ev,
                            .ts_us = ref->ts_us, .rule = matches[i].rule, .now_us = r->now_us};
        uint32_t k = r->alert_count++;
        alert_record_build(&src, &r->alerts[k], &r->offsets[k], &r->bodies);
        r->rules[k] = matches[i].rule;
    }
    if (r->alert_count >= RECOVER_COMMIT_ALERTS || r->corr_out.count >= RECOVER_COMMIT_ALERTS) flush_alerts(r);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void recover_tenant(recover *r, uint64_t tenant_hash, int64_t checkpoint_us, int64_t since_us)
{
    r->tenant_hash = tenant_hash;
    if (store_tenant_name(r->rt->db, tenant_hash, r->tenant, sizeof r->tenant) != 0) {
        LOG_ERROR(MOD, "re-detection: tenant %016llx is not registered; its undetected batches stay undetected",
                  (unsigned long long)tenant_hash);
        return;
    }
    /* events stamped from `lookback` before the last watermark write (about when detection
     * stopped) on: a gap batch was received after it, and live agents stamp their events close
     * to when they send them */
    int64_t lookback = (int64_t)r->rt->cfg->detect.recovery_lookback_s * 1000000;
    int64_t anchor = checkpoint_us ? checkpoint_us : since_us;
    /* the correlation checkpoint may be older than the watermarks: replay from it */
    if (r->corr_anchor_us && r->corr_anchor_us < anchor) anchor = r->corr_anchor_us;
    int64_t from = anchor - lookback;
    int64_t skew = r->rt->cfg->ingest.max_clock_skew_s ? (int64_t)r->rt->cfg->ingest.max_clock_skew_s * 1000000 + 1
                                                     : INT64_MAX / 4;
    int64_t to = r->now_us + skew;
    uint64_t events0 = r->events, alerts0 = r->alerts_new;
    int rc = store_scan_events(r->rt->db, r->tenant, MAMORI_MAX(from, 0), to, visit_event, r);
    flush_alerts(r);
    if (rc) LOG_ERROR(MOD, "re-detection: scanning tenant %s failed: %s", r->tenant, strerror(-rc));
    char f[32];
    clock_format_rfc3339(MAMORI_MAX(from, 0), f);
    LOG_INFO(MOD, "re-detection tenant=%s window_from=%s events=%llu alerts_new=%llu", r->tenant, f,
             (unsigned long long)(r->events - events0), (unsigned long long)(r->alerts_new - alerts0));
}

struct recover_plan {
    recover r;
    int64_t since_us, checkpoint_us;
    const char *why; /* why the gap is there, for the log */
};

/* The gap could not be read: no watermark moves for the rest of the run (rt->held_all), so
 * the threads cannot carry the watermarks past a gap nobody saw; the next start reads it
 * again. Called before the threads consume (at start, or with them paused). */
static recover_plan *unreadable(detect_rt *rt, const char *what)
{
    if (rt->durable_on_publish) { /* Kafka: the detect group's offsets, not the store, hold the gap */
        LOG_ERROR(MOD, "cannot read the detection %s", what);
        return NULL;
    }
    pthread_mutex_lock(&rt->mu);
    rt->held_all = true;
    pthread_mutex_unlock(&rt->mu);
    LOG_ERROR(MOD,
              "cannot read the detection %s: re-detection skipped; no watermark moves until the next start, which "
              "re-detects what is not marked detected",
              what);
    return NULL;
}

static recover_plan *prepare(detect_rt *rt, const char *why)
{
    store *db = rt->db;
    int64_t since = 0, checkpoint = 0;
    int64_t now = clock_wall_us();
    /* detect.recover.read: a test hook (README), the read fails as RocksDB's would */
    if (failpoint("detect.recover.read") || store_detect_state_get(db, &since, &checkpoint) != 0)
        return unreadable(rt, "state");
    if (since == 0) {
        start_marks sm = {.now_us = now};
        (void)store_list_all_agents(db, add_start_mark, &sm);
        if (store_detect_start(db, now, sm.v, sm.n) != 0)
            LOG_ERROR(MOD, "cannot record the detection start (retried at the next start)");
        else
            LOG_INFO(MOD, "live detection starts on this store (agents=%zu); stored events are history, not re-detected",
                     sm.n);
        free(sm.v);
        return NULL;
    }
    if (rt->durable_on_publish) {
        /* Kafka: a batch's offset is committed only after its alerts are written, so whatever
         * a crash left undetected is after the detect group's committed offset and is delivered
         * again; re-reading the store would only repeat that (and a store that is still
         * catching up with Kafka has not got all of it yet). docs/kafka.md §4 */
        LOG_INFO(MOD, "kafka bus: undetected batches are redelivered by the detect group; no start-up re-detection");
        return NULL;
    }
    recover_plan *plan = mamori_xcalloc(1, sizeof *plan);
    plan->since_us = since;
    plan->checkpoint_us = checkpoint;
    plan->why = why;
    recover *r = &plan->r;
    r->rt = rt;
    if (store_detect_marks_scan(db, collect_mark, r) != 0) {
        free(r->marks);
        free(plan);
        return unreadable(rt, "watermarks");
    }
    if (r->mark_count) qsort(r->marks, r->mark_count, sizeof *r->marks, cmp_mark); /* none: NULL, UB for qsort */
    (void)store_list_all_agents(db, collect_gap, r);
    free(r->marks);
    r->marks = NULL;
    r->mark_count = 0;
    if (r->gap_count == 0) {
        free(plan);
        return NULL;
    }
    qsort(r->gaps, r->gap_count, sizeof *r->gaps, cmp_gap);
    return plan;
}

recover_plan *detect_recover_prepare(detect_rt *rt)
{
    return prepare(rt, "a crash, or a stop while no rule set was running");
}

recover_plan *detect_recover_prepare_degraded(detect_rt *rt)
{
    MAMORI_ASSERT(!rt->durable_on_publish); /* Kafka: the threads did not consume meanwhile */
    return prepare(rt, "taken while no rule set could be built");
}

void detect_recover_free(recover_plan *plan)
{
    if (!plan) return;
    free(plan->r.gaps);
    free(plan);
}

bool detect_recover_run(detect_rt *rt, recover_plan *plan, detect_ruleset *rs, corr_gen *corr)
{
    if (!plan) return true;
    store *db = rt->db;
    recover r = plan->r;
    int64_t since = plan->since_us, checkpoint = plan->checkpoint_us;
    const char *why = plan->why;
    int64_t now = clock_wall_us();
    r.now_us = now;
    free(plan);
    r.corr = corr;
    corr_alerts_init(&r.corr_out);
    uint64_t batches = 0, corr_batches = 0;
    for (size_t i = 0; i < r.gap_count; i++) {
        batches += r.gaps[i].to_seq - r.gaps[i].from_seq;
        corr_batches += r.gaps[i].to_seq - MAMORI_MIN(r.gaps[i].corr_from, r.gaps[i].to_seq);
    }
    LOG_WARN(MOD,
             "%zu agents have %llu batches stored but not detected (%s): re-detecting them; %llu batches after the "
             "correlation checkpoint are fed to the correlations again",
             r.gap_count, (unsigned long long)batches, why, (unsigned long long)corr_batches);
    r.worker = detect_worker_create();
    bool bound = detect_worker_bind(r.worker, rs) == 0;
    if (!bound) LOG_ERROR(MOD, "re-detection: cannot bind the rule set; the gap is not re-detected");
    if (bound && detect_ruleset_rule_count(rs) > 0) {
        r.parser = json_parser_create();
        r.norm = normalizer_create();
        arena_init(&r.arena, 64 * 1024);
        buf_init(&r.bodies);
        for (size_t i = 0; i < r.gap_count; i++) /* sorted by tenant: each tenant once */
            if (i == 0 || r.gaps[i].tenant_hash != r.gaps[i - 1].tenant_hash)
                recover_tenant(&r, r.gaps[i].tenant_hash, checkpoint, since);
        buf_fini(&r.bodies);
        arena_fini(&r.arena);
        normalizer_destroy(r.norm);
        json_parser_destroy(r.parser);
    }
    /* the new watermarks, and what could not be found */
    uint64_t found = 0, missing = 0;
    store_detect_mark *marks = mamori_xcalloc(r.gap_count, sizeof *marks);
    for (size_t i = 0; i < r.gap_count; i++) {
        agent_gap *g = &r.gaps[i];
        if (g->seen_count) qsort(g->seen_seqs, g->seen_count, sizeof *g->seen_seqs, cmp_u64);
        size_t distinct = 0;
        for (size_t k = 0; k < g->seen_count; k++)
            if (k == 0 || g->seen_seqs[k] != g->seen_seqs[k - 1]) distinct++;
        uint64_t want = g->to_seq - g->from_seq;
        found += distinct;
        if (bound && detect_ruleset_rule_count(rs) > 0 && distinct < want) {
            missing += want - distinct;
            LOG_WARN(MOD,
                     "re-detection: tenant %016llx agent %016llx: %llu of batches %llu..%llu had no event in the window "
                     "(empty batches, or events stamped before it: not re-detected)",
                     (unsigned long long)g->tenant_hash, (unsigned long long)g->agent_hash,
                     (unsigned long long)(want - distinct), (unsigned long long)g->from_seq + 1,
                     (unsigned long long)g->to_seq);
        }
        marks[i] = (store_detect_mark){g->tenant_hash, g->agent_hash, g->to_seq,
                                       g->last_received_us ? g->last_received_us : now};
        free(g->seen_seqs);
    }
    bool marked = false;
    if (bound && r.commit_errors == 0) {
        marked = store_alerts_commit(db, NULL, 0, marks, r.gap_count, NULL, NULL) == 0;
        if (!marked) LOG_ERROR(MOD, "re-detection: writing the watermarks failed");
    }
    if (!marked && r.gap_count) {
        /* the threads will detect these agents' later batches: were they to move the
         * watermarks past the gap, the next start would not see it */
        detect_agent_key *held = mamori_xcalloc(r.gap_count, sizeof *held);
        for (size_t i = 0; i < r.gap_count; i++) held[i] = (detect_agent_key){r.gaps[i].tenant_hash, r.gaps[i].agent_hash};
        pthread_mutex_lock(&rt->mu);
        MAMORI_ASSERT(!rt->held); /* one re-detection per run */
        rt->held = held; /* the gaps are sorted by (tenant, agent) */
        rt->held_count = r.gap_count;
        pthread_mutex_unlock(&rt->mu);
        LOG_ERROR(MOD,
                  "re-detection incomplete: the watermarks of %zu agents stay where they are until the next start, "
                  "which re-detects their gap again",
                  r.gap_count);
    }
    pthread_mutex_lock(&rt->mu);
    rt->recovered_batches += found;
    rt->recovered_events += r.events;
    rt->recovered_alerts += r.alerts_new;
    rt->recovery_missing_batches += missing;
    pthread_mutex_unlock(&rt->mu);
    LOG_INFO(MOD, "re-detection done batches_found=%llu batches_missing=%llu events=%llu alerts_new=%llu",
             (unsigned long long)found, (unsigned long long)missing, (unsigned long long)r.events,
             (unsigned long long)r.alerts_new);
    free(marks);
    free(r.gaps);
    free(r.marks);
    free(r.alerts);
    free(r.rules);
    free(r.offsets);
    free(r.written);
    corr_alerts_fini(&r.corr_out);
    detect_worker_destroy(r.worker);
    /* unbound: nothing was re-fed to the correlations either (the next start retries) */
    return bound && r.commit_errors == 0;
}
