/* server/detect_runtime.c — the live detection runtime: builds rule sets from
 * `detect.rules` on a loader thread (never on a detection thread), swaps each new one into
 * the slot atomically (a failed build keeps the running set and says why), runs the start-up
 * re-detection once, releases the detection threads, and renders the detect metrics. */
#include "detect_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "detect"
#define REJECTIONS_LOGGED_MAX 100u
/* After a failed first build: build again after 10 s, doubling up to 5 min (and on SIGHUP). */
#define DETECT_FIRST_RETRY_MS 10000u
#define DETECT_FIRST_RETRY_MAX_MS 300000u

const uint64_t detect_latency_bucket_us[DETECT_LATENCY_BUCKETS - 1] = {
    500,    1000,   2000,   3000,    5000,    7500,    10000,   15000,    20000,    30000,    50000,    75000,
    100000, 150000, 200000, 300000, 500000, 750000, 1000000, 2000000, 5000000, 10000000, 30000000, 60000000};

/* ---- building ---- */

typedef struct placeholders {
    detect_placeholder *items;
    size_t count;
} placeholders;

static void placeholders_add(placeholders *ph, const char *spec)
{
    const char *eq = strchr(spec, '='); /* config_validate checked NAME=VALUE */
    MAMORI_ASSERT(eq && eq != spec);
    size_t name_len = (size_t)(eq - spec);
    detect_placeholder *slot = NULL;
    for (size_t i = 0; i < ph->count; i++)
        if (strlen(ph->items[i].name) == name_len && !strncmp(ph->items[i].name, spec, name_len)) slot = &ph->items[i];
    if (!slot) {
        ph->items = mamori_xrealloc(ph->items, (ph->count + 1) * sizeof *ph->items);
        slot = &ph->items[ph->count++];
        *slot = (detect_placeholder){.name = mamori_xstrndup(spec, name_len)};
    }
    const char **values = mamori_xrealloc((void *)slot->values, (slot->value_count + 1) * sizeof *values);
    values[slot->value_count++] = eq + 1; /* borrowed from the config */
    slot->values = values;
}

static void placeholders_free(placeholders *ph)
{
    for (size_t i = 0; i < ph->count; i++) {
        free((void *)ph->items[i].values);
        free((void *)ph->items[i].name);
    }
    free(ph->items);
}

static void log_report(const detect_report *r)
{
    uint32_t logged = 0;
    for (size_t i = 0; i < r->problem_count; i++) {
        const detect_problem *p = &r->problems[i];
        if (detect_reason_is_skip(p->reason)) continue;
        if (logged++ == REJECTIONS_LOGGED_MAX) {
            LOG_WARN(MOD, "rule rejections beyond %u not logged (mamorictl rules lint lists them all)",
                     REJECTIONS_LOGGED_MAX);
            break;
        }
        LOG_WARN(MOD, "rule rejected file=%s line=%u reason=%s: %s", p->file, p->line, detect_reason_name(p->reason),
                 p->message);
    }
}

int detect_build_ruleset(detect_rt *rt, detect_ruleset **out, corr_gen **corr, ruleset_info *info, char *err,
                         size_t err_len)
{
    const mamori_config *cfg = rt->cfg;
    *out = NULL;
    *corr = NULL;
    detect_options opt;
    detect_options_default(&opt);
    opt.include_deprecated = cfg->detect.include_deprecated;
    opt.include_unsupported = cfg->detect.include_unsupported;
    opt.compile_threads = cfg->detect.compile_threads;
    opt.rules_max = cfg->detect.max_rules;
    /* evaluated live (detect_corr.c); in a detect process without the store role only through
     * re-keying (their matches to the matches topic, detect_rekey.c) */
    opt.correlations = !rt->alerts_to_bus || corr_rt_rekey(rt->corr) != CORR_REKEY_OFF;
    placeholders ph = {0};
    for (uint32_t i = 0; i < cfg->detect.placeholders.count; i++) placeholders_add(&ph, cfg->detect.placeholders.items[i]);
    opt.placeholders = ph.items;
    opt.placeholder_count = ph.count;
    detect_loader *loader = detect_loader_create(&opt);
    placeholders_free(&ph); /* the loader copied them */
    int rc = 0;
    for (uint32_t i = 0; i < cfg->detect.rules.count && rc == 0; i++)
        rc = detect_loader_add_path(loader, cfg->detect.rules.items[i], err, err_len);
    if (rc == 0) rc = detect_loader_build(loader, out, err, err_len);
    correlate_set *set = NULL;
    if (rc == 0 && (rc = correlate_set_build(loader, *out, &set)) != 0) {
        snprintf(err, err_len, "building the correlation rules: %s", strerror(-rc));
        detect_ruleset_unref(*out);
        *out = NULL;
    }
    if (rc == 0) {
        *corr = corr_gen_create(detect_ruleset_generation(*out), set);
        const detect_report *r = detect_loader_report(loader);
        log_report(r);
        memset(info, 0, sizeof *info);
        info->generation = detect_ruleset_generation(*out);
        info->rules = r->loaded;
        info->rejected = r->rejected;
        info->skipped = r->skipped;
        info->unroutable = r->unroutable;
        info->files = r->files;
        info->correlations = r->correlations;
        memcpy(info->by_reason, r->by_reason, sizeof info->by_reason);
        info->databases = r->databases;
        info->patterns = r->patterns;
        info->database_bytes = r->database_bytes;
        info->scratch_bytes = r->scratch_bytes;
        info->hot_bytes = r->hot_bytes;
        info->load_ms = r->load_ms;
        info->compile_ms = r->compile_ms;
        info->loaded_at_us = clock_wall_us();
    }
    detect_loader_destroy(loader);
    return rc;
}

static void log_loaded(const char *what, const ruleset_info *i)
{
    LOG_INFO(MOD,
             "%s generation=%llu rules=%u correlations=%u rejected=%u skipped=%u unroutable=%u files=%u load_ms=%.0f "
             "compile_ms=%.0f databases=%u patterns=%u database_mib=%.1f hugepage_mib=%.1f",
             what, (unsigned long long)i->generation, i->rules, i->correlations, i->rejected, i->skipped, i->unroutable,
             i->files, i->load_ms, i->compile_ms, i->databases, i->patterns, (double)i->database_bytes / 1048576.0,
             (double)i->hot_bytes / 1048576.0);
}

/* Stops every detection thread between two groups of batches (or until it is gone). */
static void pause_threads(detect_rt *rt)
{
    pthread_mutex_lock(&rt->mu);
    atomic_store_explicit(&rt->pause, true, memory_order_release);
    while (rt->paused + rt->exited < rt->thread_count && !rt->stopping) pthread_cond_wait(&rt->cv, &rt->mu);
    pthread_mutex_unlock(&rt->mu);
}

static void resume_threads(detect_rt *rt)
{
    pthread_mutex_lock(&rt->mu);
    atomic_store_explicit(&rt->pause, false, memory_order_release);
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
}

/* Builds a rule set from the configured paths and swaps it in: threads pick it up at their
 * next group of batches, the old one is freed when the last batch evaluated with it is done.
 * After a failed first build (degraded, embedded bus) the threads are paused first and the
 * re-detection of what they took without rules is planned (rt->recovery); the loader runs it
 * and lets them go on. A failure keeps the running set, if any. */
int detect_rt_reload(detect_rt *rt, char *err, size_t err_len)
{
    pthread_mutex_lock(&rt->reload_mu);
    detect_ruleset *rs = NULL;
    corr_gen *corr = NULL;
    ruleset_info info;
    int rc = detect_build_ruleset(rt, &rs, &corr, &info, err, err_len);
    if (rc == 0 && atomic_load_explicit(&rt->degraded, memory_order_relaxed)) {
        /* what the threads released so far is durable and below no watermark: the gap
         * (watermark, durable seq] of each agent, read with the threads stopped */
        pause_threads(rt);
        detect_recover_free(rt->recovery);
        corr_rt_prepare(rt->corr);
        rt->recovery = detect_recover_prepare_degraded(rt);
    }
    pthread_mutex_lock(&rt->mu);
    if (rc == 0) {
        rt->info = info;
        rt->reloads_ok++;
    } else {
        rt->reloads_failed++;
    }
    uint64_t kept = rt->info.generation;
    pthread_mutex_unlock(&rt->mu);
    if (rc == 0) {
        corr_rt_swap(rt->corr, corr, rt->slot, rs); /* the set and its correlations together */
        log_loaded("rule set loaded", &info);
    } else if (kept) {
        LOG_ERROR(MOD, "rule set reload failed, keeping generation %llu: %s", (unsigned long long)kept, err);
    } else {
        LOG_ERROR(MOD, "rule set build failed, still detecting nothing: %s", err);
    }
    pthread_mutex_unlock(&rt->reload_mu);
    return rc;
}

/* ---- the loader thread ---- */

/* Waits for a reload request, or for the retry after `retry_ms`; false when stopping. */
static bool wait_request(detect_rt *rt, uint32_t retry_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += retry_ms / 1000;
    until.tv_nsec += (long)(retry_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&rt->mu);
    while (!rt->stopping && !rt->reload_requested)
        if (pthread_cond_timedwait(&rt->cv, &rt->mu, &until) == ETIMEDOUT) break;
    bool stopping = rt->stopping;
    rt->reload_requested = false;
    pthread_mutex_unlock(&rt->mu);
    return !stopping;
}

/* No rule set could be built at start: builds again on SIGHUP, and by itself after
 * DETECT_FIRST_RETRY_MS doubling up to DETECT_FIRST_RETRY_MAX_MS, until one builds. False
 * when the runtime stops first. */
static bool first_set_later(detect_rt *rt)
{
    char err[1024];
    uint32_t retry_ms = DETECT_FIRST_RETRY_MS;
    for (;;) {
        if (!wait_request(rt, retry_ms)) return false;
        retry_ms = MAMORI_MIN(retry_ms * 2, DETECT_FIRST_RETRY_MAX_MS);
        LOG_INFO(MOD, "building the rule set again (%u paths)", rt->cfg->detect.rules.count);
        if (detect_rt_reload(rt, err, sizeof err) == 0) return true;
    }
}

/* The threads may consume (they wait for this at start). */
static void set_ready(detect_rt *rt)
{
    pthread_mutex_lock(&rt->mu);
    rt->ready = true;
    rt->threads_idle = false;
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
}

static void *loader_main(void *arg)
{
    detect_rt *rt = arg;
    pthread_setname_np(pthread_self(), "detect-loader");
    char err[1024];
    if (detect_rt_reload(rt, err, sizeof err) != 0) {
        if (rt->durable_on_publish) {
            /* Kafka: the threads do not consume until a set builds, so the detect group's
             * committed offsets hold and nothing is skipped; ingest does not wait for them */
            LOG_ERROR(MOD, "no rule set could be built: the detection threads wait (the detect group's offsets hold) "
                           "until a build succeeds (SIGHUP, or a retry)");
            pthread_mutex_lock(&rt->mu);
            rt->threads_idle = true; /* a shutdown need not wait for them */
            pthread_mutex_unlock(&rt->mu);
        } else {
            /* Embedded bus: waiting would stop ingest once the bus is full. The threads take
             * batches without rules instead, and the first good build re-detects them. */
            detect_ruleset *empty = NULL;
            detect_loader *l = detect_loader_create(NULL);
            if (detect_loader_build(l, &empty, err, sizeof err) != 0)
                mamori_panic(__FILE__, __LINE__, "empty rule set: %s", err);
            detect_loader_destroy(l);
            corr_rt_swap(rt->corr, NULL, rt->slot, empty);
            atomic_store_explicit(&rt->degraded, true, memory_order_release);
            LOG_ERROR(MOD, "no rule set could be built: events are stored but not detected until a build succeeds "
                           "(SIGHUP, or a retry); they are re-detected then");
            set_ready(rt);
        }
        if (!first_set_later(rt)) return NULL;
    }
    corr_gen *corr = NULL;
    detect_ruleset *rs = corr_rt_acquire(rt->corr, rt->slot, &corr);
    corr_rt_restore(rt->corr); /* the checkpointed state, before re-detection feeds what followed it */
    bool recovered = detect_recover_run(rt, rt->recovery, rs, corr) && !rt->held_all; /* held_all: gap unread */
    rt->recovery = NULL;
    corr_rt_started(rt->corr, recovered);
    corr_gen_unref(corr);
    detect_ruleset_unref(rs);
    set_ready(rt);
    if (atomic_exchange_explicit(&rt->degraded, false, memory_order_acq_rel)) {
        LOG_INFO(MOD, "detecting again: batches from now on are evaluated as they come");
        resume_threads(rt);
    }
    pthread_mutex_lock(&rt->mu);
    while (!rt->stopping) {
        while (!rt->stopping && !rt->reload_requested) pthread_cond_wait(&rt->cv, &rt->mu);
        if (rt->stopping) break;
        rt->reload_requested = false;
        pthread_mutex_unlock(&rt->mu);
        LOG_INFO(MOD, "reloading rules (%u paths)", rt->cfg->detect.rules.count);
        int rc = detect_rt_reload(rt, err, sizeof err); /* a failure is logged; the running set stays */
        (void)rc;
        pthread_mutex_lock(&rt->mu);
    }
    pthread_mutex_unlock(&rt->mu);
    return NULL;
}

void detect_rt_request_reload(detect_rt *rt)
{
    pthread_mutex_lock(&rt->mu);
    rt->reload_requested = true;
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
}

/* ---- life cycle ---- */

int detect_rt_create(const mamori_config *cfg, store *db, bus *b, detect_rt **out, char *err, size_t err_len)
{
    *out = NULL;
    uint32_t roles = 0;
    if (config_roles(cfg, &roles, err, err_len)) return -EINVAL; /* validated before: cannot fail */
    for (uint32_t i = 0; i < cfg->detect.rules.count; i++) {
        struct stat st;
        if (stat(cfg->detect.rules.items[i], &st) != 0) {
            snprintf(err, err_len, "detect.rules: %s: %s", cfg->detect.rules.items[i], strerror(errno));
            return -ENOENT;
        }
    }
    detect_rt *rt = mamori_xcalloc(1, sizeof *rt);
    rt->cfg = cfg;
    rt->db = db;
    rt->bus = b;
    rt->durable_on_publish = bus_durable_on_publish(b);
    rt->alerts_to_bus = rt->durable_on_publish && !(roles & CONFIG_ROLE_STORE);
    rt->slot = detect_slot_create();
    pthread_mutex_init(&rt->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* wait_request's timed waits */
    pthread_cond_init(&rt->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&rt->reload_mu, NULL);
    pthread_mutex_init(&rt->rules_mu, NULL);
    rt->thread_count = cfg->detect.threads;
    rt->corr = corr_rt_create(cfg, db);
    /* Kafka: correlations not grouped by host are re-keyed by their group-by value, so each
     * key's state lives on one detect worker (docs/detection.md §11.8); a process without the
     * store role keeps no correlation state of its own and re-keys them all */
    if (rt->durable_on_publish && cfg->bus.kafka.matches_topic && cfg->bus.kafka.matches_topic[0])
        corr_rt_set_rekey(rt->corr, rt->alerts_to_bus ? CORR_REKEY_ALL : CORR_REKEY_NON_HOST);
    rt->recovery = detect_recover_prepare(rt);
    *out = rt;
    return 0;
}

int detect_rt_start(detect_rt *rt)
{
    int rc = detect_threads_start(rt);
    if (rc) return rc;
    rc = pthread_create(&rt->loader, NULL, loader_main, rt);
    if (rc) {
        pthread_mutex_lock(&rt->mu);
        rt->stopping = true;
        pthread_cond_broadcast(&rt->cv);
        pthread_mutex_unlock(&rt->mu);
        return -rc;
    }
    rt->loader_started = true;
    if (corr_rt_rekey(rt->corr) != CORR_REKEY_OFF) {
        rc = corr_intake_start(rt, &rt->intake);
        if (rc) return rc;
    }
    return 0;
}

void detect_rt_join(detect_rt *rt)
{
    if (!rt) return;
    /* the threads drain the (shut down) bus first: they need the first rule set for that,
     * so the loader keeps running until they are done — unless no set could be built on
     * Kafka: then they never consumed, and what they would drain is delivered again */
    pthread_mutex_lock(&rt->mu);
    if (rt->threads_idle) {
        rt->stopping = true;
        pthread_cond_broadcast(&rt->cv);
    }
    pthread_mutex_unlock(&rt->mu);
    detect_threads_join(rt);
    corr_intake_stop(rt->intake); /* what it read and did not write is read again at the next start */
    pthread_mutex_lock(&rt->mu);
    rt->stopping = true;
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    if (rt->loader_started) {
        pthread_join(rt->loader, NULL);
        /* the threads wrote their last alerts: a final checkpoint resumes exactly here */
        if (corr_rt_checkpoint_now(rt->corr) != 0) LOG_ERROR(MOD, "final correlation checkpoint not written");
    }
    rt->loader_started = false;
}

void detect_rt_destroy(detect_rt *rt)
{
    if (!rt) return;
    detect_rt_join(rt);
    detect_slot_destroy(rt->slot);
    detect_recover_free(rt->recovery);
    corr_intake_free(rt->intake);
    corr_rt_destroy(rt->corr);
    free(rt->threads);
    free(rt->held);
    for (uint32_t i = 0; i < rt->rule_counter_count; i++) {
        free(rt->rule_counters[i].rule_id);
        free(rt->rule_counters[i].level);
    }
    free(rt->rule_counters);
    pthread_mutex_destroy(&rt->mu);
    pthread_cond_destroy(&rt->cv);
    pthread_mutex_destroy(&rt->reload_mu);
    pthread_mutex_destroy(&rt->rules_mu);
    free(rt);
}

/* ---- counters and metrics ---- */

void detect_rule_count(detect_rt *rt, const detect_rule *rule, uint64_t n)
{
    const char *id = rule->id[0] ? rule->id : rule->title;
    const char *level = rule->level_name[0] ? rule->level_name : "none";
    pthread_mutex_lock(&rt->rules_mu);
    rule_counter *c = NULL;
    for (uint32_t i = 0; i < rt->rule_counter_count && !c; i++)
        if (!strcmp(rt->rule_counters[i].rule_id, id) && !strcmp(rt->rule_counters[i].level, level))
            c = &rt->rule_counters[i];
    if (!c) {
        if (rt->rule_counter_count == rt->rule_counter_cap) {
            rt->rule_counter_cap = rt->rule_counter_cap ? rt->rule_counter_cap * 2 : 64;
            rt->rule_counters = mamori_xrealloc(rt->rule_counters, rt->rule_counter_cap * sizeof *rt->rule_counters);
        }
        c = &rt->rule_counters[rt->rule_counter_count++];
        *c = (rule_counter){.rule_id = mamori_xstrdup(id), .level = mamori_xstrdup(level)};
    }
    c->alerts += n;
    pthread_mutex_unlock(&rt->rules_mu);
}

static void metric(buf *o, const char *name, const char *type, const char *help, uint64_t v)
{
    buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, (unsigned long long)v);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label_value(buf *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') buf_putc(o, '\\'), buf_putc(o, *s);
        else if (*s == '\n') buf_puts(o, "\\n");
        else buf_putc(o, *s);
    }
}

void detect_rt_write_metrics(void *ctx, buf *o)
{
    detect_rt *rt = ctx;
    detect_counters c;
    detect_threads_sum(rt, &c);
    pthread_mutex_lock(&rt->mu);
    ruleset_info info = rt->info;
    uint64_t ok = rt->reloads_ok, failed = rt->reloads_failed;
    uint64_t rb = rt->recovered_batches, re = rt->recovered_events, ra = rt->recovered_alerts;
    uint64_t rm = rt->recovery_missing_batches;
    bool no_set = info.generation == 0 || atomic_load_explicit(&rt->degraded, memory_order_relaxed);
    bool held = rt->held_all || rt->held_count;
    pthread_mutex_unlock(&rt->mu);

    buf_puts(o, "# HELP mamori_detect_alerts_total alerts raised (new, durable), by rule\n"
                "# TYPE mamori_detect_alerts_total counter\n");
    pthread_mutex_lock(&rt->rules_mu);
    for (uint32_t i = 0; i < rt->rule_counter_count; i++) {
        buf_puts(o, "mamori_detect_alerts_total{rule_id=\"");
        label_value(o, rt->rule_counters[i].rule_id);
        buf_puts(o, "\",level=\"");
        label_value(o, rt->rule_counters[i].level);
        buf_printf(o, "\"} %llu\n", (unsigned long long)rt->rule_counters[i].alerts);
    }
    pthread_mutex_unlock(&rt->rules_mu);
    metric(o, "mamori_detect_alerts_existing_total", "counter",
           "rule hits whose alert was already stored (resends, re-detection): not raised again", c.alerts_existing);
    buf_printf(o, "# HELP mamori_detect_alerts_dropped_total rule hits not kept, by reason\n"
                  "# TYPE mamori_detect_alerts_dropped_total counter\n"
                  "mamori_detect_alerts_dropped_total{reason=\"batch_limit\"} %llu\n",
               (unsigned long long)c.alerts_dropped);
    metric(o, "mamori_detect_batches_total", "counter", "batches evaluated", c.batches);
    metric(o, "mamori_detect_batches_skipped_total", "counter",
           "batches taken while no rule set could be built (re-detected by the first good build)", c.skipped);
    metric(o, "mamori_detect_no_ruleset", "gauge",
           "1 while no rule set is running (the first build failed, or is not done)", no_set);
    metric(o, "mamori_detect_watermarks_held", "gauge",
           "1 when re-detection could not read or write its gap: watermarks stay until the next start re-detects it",
           held);
    metric(o, "mamori_detect_eval_calls_total", "counter",
           "detection engine calls (consecutive polled batches evaluated together)", c.eval_calls);
    metric(o, "mamori_detect_events_evaluated_total", "counter", "events evaluated against the rule set", c.events);
    metric(o, "mamori_detect_candidate_rules_total", "counter", "rule conditions evaluated (candidates)", c.candidates);
    metric(o, "mamori_detect_rule_matches_total", "counter", "rule matches", c.matches);
    metric(o, "mamori_detect_scans_total", "counter", "value scans (Hyperscan, literal sets, scan memo)", c.scans);
    metric(o, "mamori_detect_scan_memo_hits_total", "counter", "value scans answered by the workers' scan memos",
           c.memo_hits);
    metric(o, "mamori_detect_scan_errors_total", "counter", "Hyperscan scan failures", c.scan_errors);
    buf_printf(o, "# HELP mamori_detect_eval_seconds time evaluating batches\n# TYPE mamori_detect_eval_seconds summary\n"
                  "mamori_detect_eval_seconds_sum %.6f\nmamori_detect_eval_seconds_count %llu\n",
               (double)c.eval_us_sum / 1e6, (unsigned long long)c.batches);
    buf_puts(o, "# HELP mamori_detect_alert_latency_seconds batch received to alert durable\n"
                "# TYPE mamori_detect_alert_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < DETECT_LATENCY_BUCKETS - 1; b++) {
        cum += c.latency_buckets[b];
        buf_printf(o, "mamori_detect_alert_latency_seconds_bucket{le=\"%g\"} %llu\n",
                   (double)detect_latency_bucket_us[b] / 1e6, (unsigned long long)cum);
    }
    cum += c.latency_buckets[DETECT_LATENCY_BUCKETS - 1];
    buf_printf(o,
               "mamori_detect_alert_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
               "mamori_detect_alert_latency_seconds_sum %.6f\nmamori_detect_alert_latency_seconds_count %llu\n",
               (unsigned long long)cum, (double)c.latency_us_sum / 1e6, (unsigned long long)c.latency_count);
    metric(o, "mamori_detect_pending_batches", "gauge", "evaluated batches waiting for the store to make them durable",
           c.pending);
    metric(o, "mamori_detect_commits_total", "counter", "alert and watermark writes", c.commits);
    metric(o, "mamori_detect_commit_errors_total", "counter", "alert writes that failed (retried)", c.commit_errors);
    metric(o, "mamori_detect_ruleset_generation", "gauge", "generation of the running rule set", info.generation);
    metric(o, "mamori_detect_rules_loaded", "gauge", "rules in the running rule set", info.rules);
    metric(o, "mamori_detect_rules_unroutable", "gauge", "loaded rules for logsources no event reaches",
           info.unroutable);
    buf_puts(o, "# HELP mamori_detect_rules_rejected rules the running set's load rejected or skipped, by reason\n"
                "# TYPE mamori_detect_rules_rejected gauge\n");
    for (int k = 0; k < DETECT_REASON_COUNT; k++)
        buf_printf(o, "mamori_detect_rules_rejected{reason=\"%s\"} %u\n", detect_reason_name((enum detect_reason)k),
                   info.by_reason[k]);
    metric(o, "mamori_detect_ruleset_database_bytes", "gauge", "Hyperscan database bytes of the running set",
           info.database_bytes);
    buf_printf(o, "# HELP mamori_detect_ruleset_build_seconds load and compile time of the running set\n"
                  "# TYPE mamori_detect_ruleset_build_seconds gauge\n"
                  "mamori_detect_ruleset_build_seconds{phase=\"load\"} %.3f\n"
                  "mamori_detect_ruleset_build_seconds{phase=\"compile\"} %.3f\n",
               info.load_ms / 1000.0, info.compile_ms / 1000.0);
    buf_printf(o, "# HELP mamori_detect_reloads_total rule set builds, by result\n# TYPE mamori_detect_reloads_total counter\n"
                  "mamori_detect_reloads_total{result=\"ok\"} %llu\nmamori_detect_reloads_total{result=\"failed\"} %llu\n",
               (unsigned long long)ok, (unsigned long long)failed);
    metric(o, "mamori_detect_recovered_batches_total", "counter", "batches re-detected at start-up", rb);
    metric(o, "mamori_detect_recovered_events_total", "counter", "events re-detected at start-up", re);
    metric(o, "mamori_detect_recovered_alerts_total", "counter", "alerts raised by start-up re-detection", ra);
    metric(o, "mamori_detect_recovery_missing_batches_total", "counter",
           "undetected batches start-up re-detection did not find in its window (empty, or events too old)", rm);
    corr_rt_write_metrics(rt->corr, o);
    corr_intake_write_metrics(rt->intake, o);
}

void detect_rt_get_summary(detect_rt *rt, detect_rt_summary *out)
{
    detect_counters c;
    detect_threads_sum(rt, &c);
    pthread_mutex_lock(&rt->mu);
    out->generation = rt->info.generation;
    out->rules = rt->info.rules;
    pthread_mutex_unlock(&rt->mu);
    out->events = c.events;
    out->alerts = c.alerts_written;
    out->pending_batches = c.pending;
}
