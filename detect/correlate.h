/* detect/correlate.h — Sigma correlation rules (specification v2.1): event_count,
 * value_count, temporal, temporal_ordered, value_sum, value_avg, value_percentile, chains.
 *
 * Three objects:
 *   correlate_set     the loaded correlations, their references resolved against a built
 *                     rule set (by id or name; correlations may reference correlations).
 *                     Immutable; holds a reference to the rule set it was built against.
 *   correlate_match   one base-rule match made self-contained: time, event id and, for every
 *                     correlation using the rule, the group-by key and the value field taken
 *                     from the event. Lets a caller keep matches past the event's lifetime
 *                     (mamorictl scan sorts them by time before feeding them).
 *   correlate_engine  the state: per (correlation, group-by key) the matches inside the
 *                     window, bounded (keys_max, events_per_key_max) with counted eviction,
 *                     expiring with the window, event-time ordered with a lateness allowance.
 *                     One engine per thread; serializable per correlation.
 *
 * Semantics (windows, lateness, eviction, chains) are in docs/detection.md "Correlation
 * rules". Correlation documents are loaded only when detect_options.correlations is set;
 * otherwise the loader skips them as before. */
#ifndef MAMORI_DETECT_CORRELATE_H
#define MAMORI_DETECT_CORRELATE_H

#include "detect.h"

enum correlate_type {
    CORRELATE_EVENT_COUNT = 0,
    CORRELATE_VALUE_COUNT,
    CORRELATE_TEMPORAL,
    CORRELATE_TEMPORAL_ORDERED,
    CORRELATE_VALUE_SUM,
    CORRELATE_VALUE_AVG,
    CORRELATE_VALUE_PERCENTILE,
    CORRELATE_TYPE_COUNT
};
const char *correlate_type_name(enum correlate_type type);

#define CORRELATE_RULES_MAX 64    /* rules one correlation references */
#define CORRELATE_GROUP_BY_MAX 16 /* group-by fields */
#define CORRELATE_CHAIN_DEPTH_MAX 16
#define CORRELATE_COUNT_MAX 10000 /* correlations in one rule set (SigmaHQ holds a few dozen) */
#define CORRELATE_LATENESS_MAX_US ((int64_t)366 * 86400 * 1000000) /* larger allowances are clamped */

/* One loaded correlation. Owned by its set; strings NUL-terminated. */
typedef struct correlate_rule {
    detect_rule info; /* id, name, title, level, status, tags, file, line; index = position in the set */
    enum correlate_type type;
    int64_t timespan_us;
    const char *timespan; /* as written ("10m") */
    const char *const *group_by;
    uint32_t group_count;
    const char *field; /* condition `field` (value_* types; value_count: first of `fields`) or NULL */
    const char *const *fields;
    uint32_t field_count;
    bool generate;
    uint32_t rule_count; /* entries of `rules` */
} correlate_rule;

typedef struct correlate_set correlate_set;

/* Resolves the correlation documents the loader collected (detect_options.correlations)
 * against rs, which must come from that loader's detect_loader_build. Correlations that
 * reference something not loaded, loop, or chain deeper than CORRELATE_CHAIN_DEPTH_MAX
 * are rejected into the loader's report (reason DETECT_REASON_CORRELATION) with file and
 * line; report->correlations counts the rest. Takes its own reference to rs. Call once per
 * loader. Returns an owned set in *out (possibly empty). */
int correlate_set_build(detect_loader *loader, detect_ruleset *rs, correlate_set **out) MAMORI_WUR;
void correlate_set_destroy(correlate_set *set);
size_t correlate_set_count(const correlate_set *set);
/* The rule set the correlations were built against (borrowed; alive while the set is). */
detect_ruleset *correlate_set_ruleset(const correlate_set *set);
/* Borrowed; valid while the set lives. */
const correlate_rule *correlate_set_rule(const correlate_set *set, size_t index);
/* Does a match of this base rule raise an alert of its own? Not when correlations reference
 * it and none of them says `generate: true` (the specification's default). */
bool correlate_set_rule_standalone(const correlate_set *set, const detect_rule *rule);
/* Does any correlation use this base rule? */
bool correlate_set_uses_rule(const correlate_set *set, const detect_rule *rule);

/* ---- matches -------------------------------------------------------------------------------- */

typedef struct correlate_match correlate_match;

/* A base-rule match as the engine needs it. Borrows everything for the call; returns an
 * owned match, or NULL when no correlation uses the rule. time_us is the event time
 * (ev->ts_us for normalized events); event_id the id alerts will list (mamori.event_id).
 * Group-by and value fields are read from ev the way the detect module places Sigma fields
 * (winlog.event_data.<Field>, the ecs_map row for the event's logsource, the winlog System
 * alias, else the name as an ECS path). */
correlate_match *correlate_match_create(const correlate_set *set, const detect_rule *rule, const mamori_event *ev,
                                        int64_t time_us, const char *event_id);
void correlate_match_destroy(correlate_match *m);
int64_t correlate_match_time(const correlate_match *m);
/* The receive time of the match's event (the live server: its batch's). The engine's
 * watermark never runs ahead of it, so events stamped in the future — an agent's clock ahead,
 * or a hostile agent, up to ingest.max_clock_skew_s — cannot make other agents' matches late.
 * Unset (offline scans, retro-hunt): event time alone. */
void correlate_match_set_received(correlate_match *m, int64_t received_us);

/* ---- matches on the wire (scale-out: docs/detection.md §11.8) ---------------------------------- */

/* One entry per correlation using the match's rule. */
size_t correlate_match_target_count(const correlate_match *m);
/* The correlation of a target and its group key (the encoded group-by values a worker would
 * be chosen by; NULL when a group-by field is missing). Borrowed from m and set. */
const correlate_rule *correlate_match_target(const correlate_set *set, const correlate_match *m, size_t target,
                                             const char **group_key, size_t *group_key_len);
/* Appends one target of m as a self-contained message (the correlation named by id — title
 * when none — and type, so sender and receiver may hold different rule-set generations). */
void correlate_match_encode(const correlate_set *set, const correlate_match *m, size_t target, buf *out);
/* A match with that one target, resolved against set (owned in *out): -EINVAL when the bytes
 * are malformed or of another version, -ENOENT when set has no such correlation. */
int correlate_match_decode(const correlate_set *set, const void *data, size_t len, correlate_match **out) MAMORI_WUR;
/* Where a re-keyed match came from: what the worker owning its key needs to build the
 * correlation alert when this match completes it (the alert names the completing event:
 * tenant, agent, host, event id/seq/index, received). Travels beside the match (the record's
 * "mamori.meta" header on mamori.matches). Strings are borrowed (from the decoded bytes). */
typedef struct correlate_origin {
    const char *tenant, *agent_id; /* non-empty */
    const char *host_id, *host_name; /* NULL when the event had none */
    size_t tenant_len, agent_id_len, host_id_len, host_name_len;
    uint64_t agent_hash, seq;
    uint32_t index;              /* the event's position in its batch */
    int64_t ts_us, received_us;  /* the event's stored time; its batch's receive time */
} correlate_origin;
/* Appends o as a versioned message ("MCMO"). */
void correlate_origin_encode(const correlate_origin *o, buf *out);
/* 0, or -EINVAL when the bytes are malformed, truncated, of another version, or name no
 * tenant/agent; *o borrows from data. */
int correlate_origin_decode(const void *data, size_t len, correlate_origin *o) MAMORI_WUR;
/* The Kafka key of a target on mamori.matches: tenant, a 0x1F separator, the group key (the
 * bytes correlate_match_target gives), so one tenant's key always lands on one partition and
 * tenants never share a key. */
void correlate_match_record_key(const char *tenant, const char *group_key, size_t group_key_len, buf *out);
/* Is the correlation grouped by the host (host.id, host.name, mamori.agent_id, Computer…)?
 * Then an agent's matches need no re-keying: its detect worker owns the key already. */
bool correlate_rule_grouped_by_host(const correlate_rule *r);

/* ---- the engine ------------------------------------------------------------------------------ */

typedef struct correlate_options {
    uint32_t keys_max;           /* group-by keys per correlation; the least recently updated key is evicted */
    uint32_t events_per_key_max; /* matches kept per key; the oldest (event time) is evicted */
    int64_t lateness_us;         /* a match older than its key's newest match - lateness_us is late:
                                  * counted, ignored; keys idle this + the timespan (arrival time) expire */
    bool ordered; /* the caller feeds in time order (search): temporal_ordered then checks a
                   * window only at a match of its last step, the only one that can complete
                   * a sequence (same alerts, no O(window) check per first-step match) */
} correlate_options;

/* Defaults: 100000 keys, 1000 events per key, 60 s lateness. */
void correlate_options_default(correlate_options *opt);

typedef struct correlate_stats {
    uint64_t matches;        /* matches fed (base-rule matches and chained alerts) */
    uint64_t late;           /* matches older than watermark - lateness: ignored */
    uint64_t missing_field;  /* matches without a group-by (or value) field: ignored */
    uint64_t not_numeric;    /* value_sum/value_avg matches whose field is not a number: ignored */
    uint64_t evicted_keys;   /* keys dropped by keys_max */
    uint64_t evicted_events; /* matches dropped by events_per_key_max or with an evicted key */
    uint64_t expired_events; /* matches that left the window for good */
    uint64_t alerts;         /* correlation alerts raised (chained ones included) */
    uint64_t duplicates;     /* base matches of an event the key holds already for that rule: ignored */
    uint64_t keys;           /* keys held now */
    uint64_t events;         /* matches held now */
} correlate_stats;

/* One correlation alert. Everything is borrowed for the callback only. */
typedef struct correlate_alert {
    const correlate_rule *rule;
    const char *const *group_values; /* aligned with rule->group_by */
    const char *const *event_ids;    /* every contributing event, in event-time order */
    size_t event_count;
    int64_t first_us, last_us; /* event times of the first and last contributing events */
    double value;              /* the aggregate the condition held on: count, distinct count,
                                * rules seen, sum, average, or the value's share in percent */
    const char *group_key;     /* the group-by values encoded (part of the alert's identity) */
    size_t group_key_len;
    bool emit; /* false for a correlation only feeding a chain (no `generate`) */
} correlate_alert;

/* Called for every alert, chained intermediate ones included (see emit). */
typedef void (*correlate_alert_fn)(void *ctx, const correlate_alert *alert);

typedef struct correlate_engine correlate_engine;

/* Borrows set (it must outlive the engine); opt NULL = defaults. */
correlate_engine *correlate_engine_create(const correlate_set *set, const correlate_options *opt);
void correlate_engine_destroy(correlate_engine *e);

/* Feeds one match (borrowed for the call): updates the watermark (to the match's time, or its
 * receive time when that is earlier) and the arrival clock, ignores it where late for its key,
 * adds it to the state of every correlation using its rule and calls fn for each alert
 * that fires, feeding chained correlations in turn. */
void correlate_engine_feed(correlate_engine *e, const correlate_match *m, correlate_alert_fn fn, void *ctx);
/* correlate_match_create + feed + destroy. */
void correlate_engine_feed_event(correlate_engine *e, const detect_rule *rule, const mamori_event *ev, int64_t time_us,
                                 const char *event_id, correlate_alert_fn fn, void *ctx);

int64_t correlate_engine_watermark(const correlate_engine *e); /* INT64_MIN before the first match */
/* Counters of one correlation (index in the set), or of all when index == SIZE_MAX. */
void correlate_engine_stats(const correlate_engine *e, size_t index, correlate_stats *out);

/* ---- sequences of search predicates (search's `sequence`, docs/search.md) ------------------------ */

/* A set of one temporal_ordered correlation over `steps` (2..CORRELATE_RULES_MAX) steps whose
 * matches the caller decides (search evaluates its own predicates), grouped by one opaque key,
 * timespan span_us (0: unbounded). Its alerts are exactly those a Sigma temporal_ordered
 * correlation with the same steps, group-by and timespan fires on the same matches. Not backed
 * by a rule set (correlate_set_ruleset gives NULL). */
correlate_set *correlate_sequence_set_create(uint32_t steps, int64_t span_us);
/* A match of step `step` at time_us of event event_id (NUL-terminated, borrowed) under the
 * group key (any bytes, borrowed). The alert's group_key is this key behind a u32 length. */
correlate_match *correlate_sequence_match(const correlate_set *set, uint32_t step, int64_t time_us,
                                          const char *event_id, const char *key, size_t key_len);
/* Length of the longest in-order prefix of steps the key holds inside the window ending at
 * time_us ([time_us - timespan, time_us]) — a match of step s at time_us can take part in a
 * future alert only when s <= that length (and the input arrives in time order). */
uint32_t correlate_engine_sequence_prefix(correlate_engine *e, const char *key, size_t key_len, int64_t time_us);
/* Forgets everything the key holds (search's `until`); counted as expired. */
void correlate_engine_sequence_drop(correlate_engine *e, const char *key, size_t key_len);

/* ---- alerts ---------------------------------------------------------------------------------- */

/* Deterministic identity: 32 lowercase hex digits of a hash of (correlation id — its title
 * when it has none —, group key, first contributing event id). out holds 33 bytes. */
void correlate_alert_id(const correlate_alert *a, char *out);
/* {"id","type","timespan","group":{field:value…},"window":{"first","last"},"value",
 *  "event_count","events":[…]} as compact JSON (the rule itself: detect_rule_write_json). */
void correlate_alert_write_json(buf *out, const correlate_alert *a);

/* ---- state serialization (for checkpoints) ---------------------------------------------------- */

#define CORRELATE_STATE_VERSION 1

/* Appends correlation index's state (every key and its matches, the watermark) to out in a
 * versioned, self-delimiting binary format. */
void correlate_state_encode(const correlate_engine *e, size_t index, buf *out);
/* Replaces correlation index's state with the one encoded in data[0..len) (borrowed).
 * -EINVAL when it is malformed, of another version, or of another correlation (by id, or
 * title, and type); the state is then left empty. Keys and matches over the engine's
 * limits are evicted (counted) as if they had arrived. Raises the watermark to the
 * encoded one. */
int correlate_state_decode(correlate_engine *e, size_t index, const void *data, size_t len) MAMORI_WUR;

/* Incremental checkpoints: per correlation a header (id, type, watermark, arrival counter)
 * and one record per key, so a checkpoint writes what changed. */
void correlate_state_header_encode(const correlate_engine *e, size_t index, buf *out);
/* Checks the header is of this correlation (-EINVAL otherwise) and raises the watermark and
 * counter to it. Decode it before the correlation's keys. */
int correlate_state_header_decode(correlate_engine *e, size_t index, const void *data, size_t len) MAMORI_WUR;
/* Adds one key record (as correlate_state_delta gave it): -EINVAL when malformed or a key
 * already held (nothing added). Limits apply as if the matches had arrived. */
int correlate_state_key_decode(correlate_engine *e, size_t index, const void *data, size_t len) MAMORI_WUR;
/* value NULL: the key was removed. key and value are borrowed for the call. */
typedef void (*correlate_key_fn)(void *ctx, const char *key, size_t key_len, const void *value, size_t value_len);
/* Calls fn for the keys of correlation index changed since the previous delta (removed ones
 * first), or for every key when `all` or when the engine cannot list the changes (too many
 * removals since, a state replaced by decode) — returned true then: the caller replaces
 * every stored key of the correlation. Starts the next delta. scratch: the records' memory. */
bool correlate_state_delta(correlate_engine *e, size_t index, bool all, buf *scratch, correlate_key_fn fn, void *ctx);

#endif
