/* server/detect_internal.h — private to server/detect_*.c and alert_record.c: the detect
 * runtime, its threads and counters, and the pieces they share (alert building, per-rule
 * counters, recovery). */
#ifndef MAMORI_SERVER_DETECT_INTERNAL_H
#define MAMORI_SERVER_DETECT_INTERNAL_H

#include "internal.h"

#include "detect/detect.h"

/* Event-to-alert latency histogram: upper bounds in microseconds (the last bucket is open). */
#define DETECT_LATENCY_BUCKETS 25
extern const uint64_t detect_latency_bucket_us[DETECT_LATENCY_BUCKETS - 1];

#define DETECT_POLL_BATCHES 64u
#define DETECT_SHUTDOWN_WAIT_MS 30000
#define ALERT_BODY_MAX_BYTES (64u * 1024u)

/* Counters of one detection thread, summed at scrape time. */
typedef struct detect_counters {
    _Atomic uint64_t batches, events, scans, candidates, matches, scan_errors;
    _Atomic uint64_t eval_us_sum;
    _Atomic uint64_t alerts_written, alerts_existing, alerts_dropped;
    _Atomic uint64_t commits, commit_errors, marks_written;
    _Atomic uint64_t latency_buckets[DETECT_LATENCY_BUCKETS];
    _Atomic uint64_t latency_us_sum, latency_count;
    _Atomic uint64_t pending; /* batches evaluated, waiting for the store to make them durable */
} detect_counters;

/* One detection thread: its bus partition, worker, and alerts waiting for durability. */
typedef struct detect_thread detect_thread;

/* Alerts per rule (Prometheus counters survive reloads, so they are keyed by rule id and
 * level, not by rule set position). */
typedef struct rule_counter {
    char *rule_id;
    char *level;
    uint64_t alerts;
} rule_counter;

typedef struct recover_plan recover_plan;

/* What the last successful load reported (for metrics and logs). */
typedef struct ruleset_info {
    uint64_t generation;
    uint32_t rules, rejected, skipped, unroutable, files;
    uint32_t by_reason[DETECT_REASON_COUNT];
    uint32_t databases, patterns;
    uint64_t database_bytes, scratch_bytes;
    double load_ms, compile_ms;
    int64_t loaded_at_us;
} ruleset_info;

struct detect_rt {
    const mamori_config *cfg;
    store *db;
    bus *bus;
    /* Kafka: a consumed batch is durable already (the broker has it), and the detect group's
     * committed offsets are the detection watermark (docs/kafka.md §4) */
    bool durable_on_publish;
    /* no store role in this process: alerts go to the store shards through the bus */
    bool alerts_to_bus;
    detect_slot *slot;
    /* the loader thread: initial load, recovery, then reloads on request */
    pthread_t loader;
    bool loader_started;
    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;
    bool ready;           /* the first rule set is in the slot and recovery ran */
    bool reload_requested;
    bool stopping;
    ruleset_info info;
    uint64_t reloads_ok, reloads_failed;
    uint64_t recovered_batches, recovered_events, recovered_alerts, recovery_missing_batches;
    pthread_mutex_t reload_mu; /* one build at a time */
    recover_plan *recovery;    /* made at create, run (and freed) by the loader */
    /* per-rule alert counters */
    pthread_mutex_t rules_mu;
    rule_counter *rule_counters;
    uint32_t rule_counter_count, rule_counter_cap;
    /* the detection threads */
    detect_thread *threads;
    uint32_t thread_count;
};

/* Alerts on the bus (alert_transport.c): the fixed fields of a record's mamori.meta header. */
#define ALERT_META_BYTES 67u
size_t alert_meta_encode(const store_alert *a, uint8_t out[ALERT_META_BYTES]);

/* Thread bodies (detect_thread.c). */
int detect_threads_start(detect_rt *rt) MAMORI_WUR;
void detect_threads_join(detect_rt *rt);
void detect_threads_sum(detect_rt *rt, detect_counters *out);

/* Adds n alerts of a rule to its counter (rules_mu). */
void detect_rule_count(detect_rt *rt, const detect_rule *rule, uint64_t n);

/* Loading (detect_runtime.c): builds a rule set from the configured paths. */
int detect_build_ruleset(detect_rt *rt, detect_ruleset **out, ruleset_info *info, char *err, size_t err_len) MAMORI_WUR;

/* Re-detection after a crash (detect_recover.c). prepare runs in detect_rt_create, before
 * ingest starts: it records the gaps — per agent, the batches durable but not detected — or,
 * on a store detection never ran on, starts the watermarks at the durable seqs. run (on the
 * loader thread, with the first rule set, before the threads consume) re-detects the gaps and
 * frees the plan. Everything received after start-up goes through the threads. */
recover_plan *detect_recover_prepare(detect_rt *rt);
void detect_recover_run(detect_rt *rt, recover_plan *plan, detect_ruleset *rs);
void detect_recover_free(recover_plan *plan); /* a plan never run (start-up failed) */

/* The alert a rule raises on an event (alert_record.c). The body goes to body_out (the
 * alert's strings point into it only after alert_record_fix). */
typedef struct alert_source {
    const char *tenant;
    uint64_t tenant_hash;
    const char *agent_id;
    uint64_t agent_hash;
    uint64_t seq;
    int64_t received_us;
    const mamori_event *ev; /* its index is the event's position in its batch */
    int64_t ts_us;          /* the event's stored time */
    const detect_rule *rule;
    int64_t now_us;
} alert_source;
/* Fills *a (body appended to bodies at *a's body offset, kept in body_len; body stays NULL
 * until the caller points it into bodies). */
void alert_record_build(const alert_source *src, store_alert *a, uint32_t *body_offset, buf *bodies);

#endif
