/* server/detect_internal.h — private to server/detect_*.c and alert_record.c: the detect
 * runtime, its threads and counters, and the pieces they share (alert building, per-rule
 * counters, recovery). */
#ifndef MAMORI_SERVER_DETECT_INTERNAL_H
#define MAMORI_SERVER_DETECT_INTERNAL_H

#include "internal.h"

#include "detect/correlate.h"
#include "detect/detect.h"

/* Event-to-alert latency histogram: upper bounds in microseconds (the last bucket is open). */
#define DETECT_LATENCY_BUCKETS 25
extern const uint64_t detect_latency_bucket_us[DETECT_LATENCY_BUCKETS - 1];

#define DETECT_POLL_BATCHES 64u
/* Events evaluated together (detect_thread.c, evaluate): consecutive polled batches are laid
 * end to end up to this many events, the detection engine's chunk (detect/internal.h
 * DETECT_BATCH_MAX). */
#define DETECT_GROUP_EVENTS 128u
#define DETECT_SHUTDOWN_WAIT_MS 30000
#define ALERT_BODY_MAX_BYTES (64u * 1024u)

/* Counters of one detection thread, summed at scrape time. */
typedef struct detect_counters {
    _Atomic uint64_t batches, events, scans, memo_hits, candidates, matches, scan_errors;
    _Atomic uint64_t eval_calls; /* engine calls: each a group of consecutive polled batches */
    _Atomic uint64_t eval_us_sum;
    _Atomic uint64_t alerts_written, alerts_existing, alerts_dropped;
    _Atomic uint64_t commits, commit_errors, marks_written;
    _Atomic uint64_t latency_buckets[DETECT_LATENCY_BUCKETS];
    _Atomic uint64_t latency_us_sum, latency_count;
    _Atomic uint64_t pending; /* batches evaluated, waiting for the store to make them durable */
    _Atomic uint64_t skipped; /* batches taken while no rule set could be built (re-detected later) */
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

typedef struct detect_agent_key {
    uint64_t tenant_hash, agent_hash;
} detect_agent_key;

/* What the last successful load reported (for metrics and logs). */
typedef struct ruleset_info {
    uint64_t generation;
    uint32_t rules, correlations, rejected, skipped, unroutable, files;
    uint32_t by_reason[DETECT_REASON_COUNT];
    uint32_t databases, patterns;
    uint64_t database_bytes, scratch_bytes, hot_bytes;
    double load_ms, compile_ms;
    int64_t loaded_at_us;
} ruleset_info;

struct detect_rt {
    const mamori_config *cfg;
    _Atomic(struct response_svc *) response; /* automatic response (detect_response.c), may be NULL */
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
    bool ready;           /* the threads may consume: the first rule set is in and recovery ran, or
                           * the first build failed on the embedded bus (degraded, below) */
    bool reload_requested;
    bool stopping;
    /* Embedded bus, first build failed: the threads take batches without rules (the store and
     * ingest go on) and write no watermark, so the first good build re-detects them from the
     * store (docs/detection.md §7.1). Set before ready, cleared by the loader while the
     * threads are paused. */
    _Atomic bool degraded;
    _Atomic bool pause;      /* the loader asks the threads to stop between groups of batches */
    uint32_t paused, exited; /* threads stopped at the loader's request; threads gone */
    bool threads_idle;       /* Kafka, first build failed: the threads wait without consuming */
    /* Agents whose watermark must not move for the rest of the run: re-detection of their gap
     * could not be written (detect_recover.c), so the next start re-detects it. Sorted by
     * (tenant, agent); set once by the loader before the threads consume, then only read. */
    detect_agent_key *held;
    size_t held_count;
    /* Every agent's watermark is held for the run: the gap could not even be read (the
     * detection state or watermarks unreadable at start or at the degraded switch), so the
     * next start re-detects from the watermarks as they are. Set, like held, before the
     * threads consume. */
    bool held_all;
    ruleset_info info;
    uint64_t reloads_ok, reloads_failed;
    uint64_t recovered_batches, recovered_events, recovered_alerts, recovery_missing_batches;
    pthread_mutex_t reload_mu; /* one build at a time */
    recover_plan *recovery;    /* made at create, run (and freed) by the loader */
    /* per-rule alert counters */
    pthread_mutex_t rules_mu;
    rule_counter *rule_counters;
    uint32_t rule_counter_count, rule_counter_cap;
    /* correlation rules: state, feeding, checkpoints (detect_corr.c) */
    struct corr_rt *corr;
    /* re-keyed correlation matches of this process's shard (Kafka; detect_rekey.c) */
    struct corr_intake *intake;
    /* the detection threads */
    detect_thread *threads;
    uint32_t thread_count;
};

/* Alerts on the bus (alert_transport.c): the fixed fields of a record's mamori.meta header. */
#define ALERT_META_BYTES 67u
size_t alert_meta_encode(const store_alert *a, uint8_t out[ALERT_META_BYTES]);

/* A new alert was written for rule on event ev of batch b: automatic response, if the rule
 * asks for it (detect_response.c). */
void detect_response_hook(detect_rt *rt, const bus_batch *b, const mamori_event *ev, const detect_rule *rule);

/* The reader of re-keyed correlation matches (detect_rekey.c). */
typedef struct corr_intake corr_intake;
int corr_intake_start(detect_rt *rt, corr_intake **out) MAMORI_WUR;
void corr_intake_stop(corr_intake *in); /* joins the thread (metrics stay readable) */
void corr_intake_free(corr_intake *in);
void corr_intake_write_metrics(corr_intake *in, buf *o);

/* Thread bodies (detect_thread.c). */
int detect_threads_start(detect_rt *rt) MAMORI_WUR;
void detect_threads_join(detect_rt *rt);
void detect_threads_sum(detect_rt *rt, detect_counters *out);

/* Adds n alerts of a rule to its counter (rules_mu). */
void detect_rule_count(detect_rt *rt, const detect_rule *rule, uint64_t n);

typedef struct corr_gen corr_gen;
/* Loading (detect_runtime.c): builds a rule set from the configured paths, with its
 * correlations (*corr: owned, never NULL on success). */
int detect_build_ruleset(detect_rt *rt, detect_ruleset **out, corr_gen **corr, ruleset_info *info, char *err,
                         size_t err_len) MAMORI_WUR;

/* Re-detection after a crash (detect_recover.c). prepare runs in detect_rt_create, before
 * ingest starts: it records the gaps — per agent, the batches durable but not detected — or,
 * on a store detection never ran on, starts the watermarks at the durable seqs. run (on the
 * loader thread, with the first rule set, before the threads consume) re-detects the gaps and
 * frees the plan. Everything received after start-up goes through the threads. */
recover_plan *detect_recover_prepare(detect_rt *rt);
/* The same, later: the first build failed, and the first good one re-detects what the threads
 * took without rules (the threads paused, the watermarks as that start left them). */
recover_plan *detect_recover_prepare_degraded(detect_rt *rt);
/* False when alerts could not be written (correlation checkpoints then stay off until the
 * next start, which replays from the last one; the gap's agents go to rt->held). */
bool detect_recover_run(detect_rt *rt, recover_plan *plan, detect_ruleset *rs, corr_gen *corr);
/* Is the agent's watermark held for the rest of the run (rt->held)? */
bool detect_agent_held(const detect_rt *rt, uint64_t tenant_hash, uint64_t agent_hash);
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
/* The start every alert body shares (alert_record.c): {"time","received","tenant","agent_id",
 * "host":{"id","name"},"rule":{…} — host strings NULL for null; the caller continues and closes. */
void alert_body_head(buf *b, int64_t time_us, int64_t received_us, const char *tenant, const char *agent_id,
                     const char *host_id, size_t host_id_len, const char *host_name, size_t host_name_len,
                     const detect_rule *rule);

/* ---- correlation rules on the live stream (detect_corr.c) ----
 *
 * A corr_gen is the correlations of one rule set (refcounted; the detection threads keep the
 * one of each pending batch). The corr_rt holds one engine per tenant for the current
 * generation, shared by every detection thread under its lock, the "fed up to" seq per agent,
 * and writes checkpoints (state + those seqs) to the state column family. Batches are fed
 * when they are durable, in each agent's order, at most once. */
typedef struct corr_rt corr_rt;

corr_gen *corr_gen_create(uint64_t generation, correlate_set *set); /* takes set (may be NULL) */
corr_gen *corr_gen_ref(corr_gen *g);
void corr_gen_unref(corr_gen *g);
size_t corr_gen_count(const corr_gen *g); /* correlations (0 for NULL) */
const correlate_set *corr_gen_set(const corr_gen *g);
bool corr_gen_standalone(const corr_gen *g, const detect_rule *rule); /* does a match alert alone? */
bool corr_gen_uses(const corr_gen *g, const detect_rule *rule);       /* do correlations use the rule? */

/* Correlation alerts of a feed, as store alerts (bodies in `bodies`; corr_alerts_fix points
 * them there once the buffer stops moving). */
typedef struct corr_alerts {
    store_alert *v;
    const detect_rule **rules; /* the correlations' rule info, for counters */
    uint32_t *offsets;
    int64_t *received_us; /* the triggering batch's, for the latency histogram */
    uint32_t *key_offsets; /* in keys: "tenant/agent" of the completing event, NUL-terminated,
                            * then tenant, agent id, process.entity_id and host.name of that
                            * event, each NUL-terminated (for automatic response) */
    int64_t *pids;         /* process.pid of the completing event, 0 when unknown */
    uint32_t count, cap;
    buf bodies, keys;
} corr_alerts;
/* The event whose match completes a correlation, as the alert names it: from the event
 * itself (direct feeding) or from a re-keyed match's origin envelope (detect_rekey.c).
 * tenant and agent_id NUL-terminated; hosts NULL when absent. */
typedef struct corr_origin_view {
    const char *tenant, *agent_id;
    uint64_t tenant_hash, agent_hash, seq;
    uint32_t index;
    int64_t ts_us, received_us, now_us;
    const char *host_id, *host_name;
    size_t host_id_len, host_name_len;
    int64_t pid;           /* process.pid when the event is at hand (direct feeding), else 0 */
    const char *entity_id; /* process.entity_id, the same way, or NULL */
    size_t entity_id_len;
} corr_origin_view;
void corr_origin_view_of(const alert_source *src, corr_origin_view *v);
/* Appends the stored alert of an emitted correlation alert (nothing when !ca->emit). */
void corr_alert_append(const corr_origin_view *src, const correlate_alert *ca, corr_alerts *out);
void corr_alerts_init(corr_alerts *a);
void corr_alerts_fini(corr_alerts *a);
void corr_alerts_clear(corr_alerts *a);
void corr_alerts_fix(corr_alerts *a);
/* The automatic response of a newly written correlation alert (index i of o, detect_response.c):
 * the actions its correlation's `x-mamori` asks for, for the agent (and kill_process: the
 * process) of the event that completed it. */
void detect_response_corr(detect_rt *rt, const corr_alerts *o, uint32_t i);

/* A checkpoint taken under the lock and written by the caller (its data owned here). */
typedef struct corr_ck_op {
    uint8_t kind;
    size_t key_off, key_len, val_off, val_len;
} corr_ck_op;
typedef struct corr_checkpoint {
    buf data, scratch;
    corr_ck_op *ops;
    size_t count, cap;
    store_state_put *puts; /* puts, then deletes, then ranges */
    store_state_write write;
    bool full, taken;
    uint64_t keys_written;
    int64_t encode_us;
} corr_checkpoint;
void corr_checkpoint_init(corr_checkpoint *k);
void corr_checkpoint_fini(corr_checkpoint *k);

/* Reads the stored checkpoint's seqs and every agent's durable seq (call before ingest opens). */
corr_rt *corr_rt_create(const mamori_config *cfg, store *db);
/* Reads every agent's durable seq again (the first good build after a failed one: what is
 * durable now is fed, by re-detection, before the paused threads go on). */
void corr_rt_prepare(corr_rt *c);
void corr_rt_destroy(corr_rt *c);
/* The checkpoint's fed-up-to seq of an agent (0 if it does not know the agent) and its anchor
 * (newest receive time fed); false when there is no checkpoint (start from the watermarks). */
bool corr_rt_checkpoint_mark(corr_rt *c, uint64_t tenant_hash, uint64_t agent_hash, uint64_t *seq, int64_t *anchor_us);
/* Installs g (taking the caller's reference) and rs into slot together, carrying each
 * tenant's state over to the correlations with the same id (title) and type. */
void corr_rt_swap(corr_rt *c, corr_gen *g, detect_slot *slot, detect_ruleset *rs);
/* The slot's rule set and its correlations, as one pair (both referenced). */
detect_ruleset *corr_rt_acquire(corr_rt *c, detect_slot *slot, corr_gen **g);
/* Start-up, in order: restore the checkpointed state (with the first rule set), re-detect
 * (feeding the batches after the checkpoint), then started: every agent fed up to its
 * durable seq at start-up, a full checkpoint written. */
void corr_rt_restore(corr_rt *c);
void corr_rt_started(corr_rt *c, bool recovered);

/* Feeding, with the lock held: batch_begin is false when the batch was fed already (then
 * skip it); feed one base-rule match (src->rule, found with g's rule set) to the tenant's
 * engine, appending the alerts to out; batch_end raises the agent's fed-up-to seq. */
void corr_rt_lock(corr_rt *c);
void corr_rt_unlock(corr_rt *c);
bool corr_rt_batch_begin(corr_rt *c, uint64_t tenant_hash, uint64_t agent_hash, uint64_t seq);
/* Re-keying (Kafka, docs/detection.md §11.8): off (every correlation fed here); the ones not
 * grouped by host published to the matches topic, host-grouped ones fed here (a process with
 * the store role, checkpointed); or all published (a detect process without the store role).
 * Set once, before feeding. */
enum { CORR_REKEY_OFF = 0, CORR_REKEY_NON_HOST = 1, CORR_REKEY_ALL = 2 };
void corr_rt_set_rekey(corr_rt *c, int mode);
int corr_rt_rekey(const corr_rt *c);
/* Records for the matches topic, built while feeding (key, value, origin meta each). */
typedef struct corr_records {
    buf data;
    struct corr_record_at {
        uint32_t key_off, key_len, val_off, val_len, meta_off, meta_len;
    } *v;
    uint32_t count, cap;
} corr_records;
void corr_records_init(corr_records *r);
void corr_records_fini(corr_records *r);
void corr_records_clear(corr_records *r);
/* Feeds one match; when re-keying, the targets to publish are appended to records instead. */
void corr_rt_feed(corr_rt *c, const corr_gen *g, const alert_source *src, corr_alerts *out, corr_records *records);
/* The current correlations (referenced; NULL before the first rule set). */
corr_gen *corr_rt_current(corr_rt *c);
void corr_rt_batch_end(corr_rt *c, uint64_t tenant_hash, uint64_t agent_hash, uint64_t seq, int64_t received_us);
/* A thread holds correlation alerts not written yet (+1), or wrote them (-1). Lock held. */
void corr_rt_inflight(corr_rt *c, int delta);
/* Lock held: takes a checkpoint when one is due (or force) and no other thread holds
 * unwritten correlation alerts; the caller writes k->write in its next alert write, then
 * calls checkpoint_done (without the lock). */
bool corr_rt_checkpoint_take(corr_rt *c, bool force, bool self_inflight, corr_checkpoint *k);
void corr_rt_checkpoint_done(corr_rt *c, corr_checkpoint *k, bool ok, int64_t write_us);
/* Takes and writes a checkpoint now (start-up, shutdown). */
int corr_rt_checkpoint_now(corr_rt *c) MAMORI_WUR;
void corr_rt_write_metrics(corr_rt *c, buf *out);

#endif
