/* store/store.h — durable, indexed event storage on RocksDB (docs/storage.md).
 *
 * Column families: events, index, alerts, agents, commands, files, outbox, state, meta.
 * Event key:  tenant_hash u64 | day u32 | ts_us u64 | agent_hash u64 | seq u64 | index u32
 *             (big-endian, 40 bytes): time-ordered inside a tenant and day.
 * Index:      postings aggregated per (tenant, day, field, value) and time slice, built in
 *             memory and written in bulk; a pending-index log written atomically with the
 *             events lets recovery rebuild any slice lost in a crash.
 * Retention:  whole day buckets removed with range deletes (O(days), not O(events)).
 *
 * Thread model: one writer thread calls store_write_group; any thread may read. A third
 * party type (rocksdb_*) never leaves this module. */
#ifndef MAMORI_STORE_H
#define MAMORI_STORE_H

#include "core/base.h"
#include "core/buf.h"
#include "core/event.h"

typedef struct store store;

#define STORE_EVENT_KEY_BYTES 40u

/* Indexed fields. Values are indexed lowercased (ASCII), so an index lookup serves both
 * exact and caseless equality and prefix matching; callers re-check exact case. */
enum store_index_field {
    STORE_IX_HOST_ID = 1,
    STORE_IX_HOST_NAME,
    STORE_IX_USER_NAME,
    STORE_IX_PROCESS_ENTITY_ID,
    STORE_IX_PROCESS_PARENT_ENTITY_ID,
    STORE_IX_PROCESS_NAME,
    STORE_IX_PROCESS_EXECUTABLE,
    STORE_IX_PROCESS_HASH, /* process.hash.md5/sha1/sha256/sha512/imphash: one field */
    STORE_IX_SOURCE_IP,
    STORE_IX_DESTINATION_IP,
    STORE_IX_DNS_QUESTION_NAME,
    STORE_IX_FILE_PATH,
    STORE_IX_EVENT_CATEGORY,
    STORE_IX_FIELD_COUNT_PLUS_ONE
};
/* ECS path of an indexed field ("process.hash.*" for the hash field); NULL if unknown. */
const char *store_index_field_name(enum store_index_field f);
/* Index field for an ECS path (process.hash.sha256 → STORE_IX_PROCESS_HASH), or 0. */
enum store_index_field store_index_field_for_path(const char *path, size_t len);

typedef struct store_tenant_retention {
    const char *tenant;
    uint32_t days;
} store_tenant_retention;

typedef struct store_options {
    const char *path;                /* data directory, created if missing */
    bool sync;                       /* fsync the WAL on every group commit (default true) */
    uint32_t retention_days;         /* default per-tenant retention */
    const store_tenant_retention *tenant_retention; /* overrides, borrowed for the call */
    size_t tenant_retention_count;
    size_t block_cache_bytes;        /* shared LRU block cache */
    size_t write_buffer_bytes;       /* memtable size of the events column family */
    int zstd_level;                  /* bottommost level compression */
    uint32_t zstd_dict_bytes;        /* 0 disables dictionary compression */
    uint32_t index_slice_ms;         /* postings are flushed at least this often */
    size_t index_slice_max_bytes;    /* ...or when the in-memory slice grows past this */
} store_options;

/* Fills defaults (the values docs/configuration.md lists). */
void store_options_default(store_options *opt);

/* Opens (creating if needed) the store and replays the pending-index log. On failure
 * returns a negative errno and writes a message to err. */
int store_open(const store_options *opt, store **out, char *err, size_t err_len) MAMORI_WUR;
/* Flushes the in-memory index slice and closes. */
void store_close(store *s);

/* One agent batch, as the bus delivers it. Borrowed for the duration of the call. */
typedef struct store_batch {
    const char *tenant;
    uint64_t tenant_hash; /* event_tenant_hash(tenant) */
    const char *agent_id;
    uint64_t agent_hash;  /* event_agent_hash(tenant, agent_id) */
    uint64_t seq;
    const mamori_event *events;
    uint32_t event_count;
} store_batch;

typedef struct store_write_result {
    uint32_t batches_written;
    uint32_t batches_duplicate; /* seq <= the agent's durable seq: already stored, skipped */
    uint64_t events_written;
    uint64_t bytes_written; /* keys + values handed to RocksDB */
} store_write_result;

/* Group commit: writes every batch (events, the agents' durable seq, the pending-index log)
 * in ONE RocksDB write (one WAL append, fsync'd if opt.sync) and adds the batches' index
 * entries to the in-memory slice. A batch whose seq is <= its agent's durable seq is
 * skipped (idempotent re-delivery). Returns 0 once durable; a negative errno if RocksDB
 * failed (nothing of the group may be assumed durable; the caller retries later). */
int store_write_group(store *s, const store_batch *batches, size_t count, store_write_result *result) MAMORI_WUR;

/* The highest durable batch seq of an agent (0 if never seen). */
int store_agent_durable_seq(store *s, uint64_t tenant_hash, uint64_t agent_hash, uint64_t *seq) MAMORI_WUR;

/* Writes the current index slice now (normally done in the background). */
int store_flush_index(store *s) MAMORI_WUR;

/* Deletes day buckets older than each tenant's retention, relative to now_us. Returns the
 * number of (tenant, day-range) deletions issued via *ranges_deleted. */
int store_apply_retention(store *s, int64_t now_us, uint32_t *ranges_deleted) MAMORI_WUR;

/* ---- reading (tools, tests, and the search layer) ---- */

/* Event key encode/decode. */
void store_event_key(uint8_t out[STORE_EVENT_KEY_BYTES], uint64_t tenant_hash, int64_t ts_us,
                     uint64_t agent_hash, uint64_t seq, uint32_t index);

/* Counts events of a tenant (tenant NULL: all tenants) with from_us <= ts < to_us. */
int store_count_events(store *s, const char *tenant, int64_t from_us, int64_t to_us, uint64_t *count) MAMORI_WUR;

/* Fetches one event's stored JSON by its address into json_out (replacing its contents);
 * -ENOENT if absent. */
int store_get_event(store *s, uint64_t tenant_hash, int64_t ts_us, uint64_t agent_hash, uint64_t seq,
                    uint32_t index, buf *json_out) MAMORI_WUR;

/* A reference to an event found through the index. */
typedef struct store_event_ref {
    int64_t ts_us;
    uint64_t agent_hash;
    uint64_t seq;
    uint32_t index;
} store_event_ref;

/* Calls fn for every event whose indexed field equals value (caseless; with prefix=true,
 * whose value starts with it) in [from_us, to_us), in ascending (ts, agent, seq, index)
 * order, each reference exactly once. fn returns non-zero to stop early. Includes events
 * whose postings are still in the in-memory slice. */
typedef int (*store_ref_fn)(void *ctx, const store_event_ref *ref);
int store_index_lookup(store *s, const char *tenant, enum store_index_field field, const char *value,
                       size_t value_len, bool prefix, int64_t from_us, int64_t to_us, store_ref_fn fn,
                       void *ctx) MAMORI_WUR;

/* An upper bound of the refs store_index_lookup would emit, read from posting headers
 * (entries never decoded): the entry counts of the postings overlapping [from_us, to_us)
 * plus the matching refs still in memory. Stops adding once over cap (*count > cap then
 * means "more than cap"). For planners choosing the most selective predicate. */
int store_index_estimate(store *s, const char *tenant, enum store_index_field field, const char *value,
                         size_t value_len, bool prefix, int64_t from_us, int64_t to_us, uint64_t cap,
                         uint64_t *count) MAMORI_WUR;

/* Intersection without a merge: for set[0..n) (ascending, unique; borrowed), sets hit[i] =
 * true for every set[i] that store_index_lookup(field, value, prefix, from_us, to_us) would
 * emit, and leaves the others unchanged. Decodes only postings overlapping the set in time
 * and in agents, each only up to the set's last ref inside it. -ENOTSUP for a prefix longer
 * than index keys keep (intersect a lookup instead). */
int store_index_mark(store *s, const char *tenant, enum store_index_field field, const char *value, size_t value_len,
                     bool prefix, int64_t from_us, int64_t to_us, const store_event_ref *set, size_t n,
                     bool *hit) MAMORI_WUR;

/* Iterates stored events of a tenant in key order within [from_us, to_us). fn gets the
 * reference and the JSON (borrowed for the call); returns non-zero to stop. */
typedef int (*store_event_fn)(void *ctx, const store_event_ref *ref, const char *json, size_t json_len);
int store_scan_events(store *s, const char *tenant, int64_t from_us, int64_t to_us, store_event_fn fn,
                      void *ctx) MAMORI_WUR;

/* The first and last event times of a tenant in [from_us, to_us) (-1 and -1 when there is
 * none): two seeks, for splitting a range scan into parts that hold data. */
int store_event_bounds(store *s, const char *tenant, int64_t from_us, int64_t to_us, int64_t *first_us,
                       int64_t *last_us) MAMORI_WUR;

typedef struct store_stats {
    uint64_t events_written;       /* since open */
    uint64_t batches_written;
    uint64_t batches_duplicate;
    uint64_t group_commits;
    uint64_t group_commit_errors;  /* failed group commits (the writer retries them) */
    uint64_t index_slices_flushed;
    uint64_t index_entries_pending; /* in the in-memory slice */
    uint64_t events_sst_bytes;      /* live SST bytes of the events column family */
    uint64_t index_sst_bytes;
    uint64_t total_sst_bytes;       /* all column families */
    uint64_t estimated_events;      /* RocksDB's estimate of keys in events */
    uint64_t retention_ranges_deleted;
    /* additions (docs/storage.md): */
    uint64_t index_slice_flush_us_total; /* background slice writes: total and worst time */
    uint64_t index_slice_flush_us_max;
    uint64_t index_writer_waits;         /* group commits that waited for the slice writer */
    uint64_t index_events_recovered;     /* events re-indexed from the pending-index log at open */
} store_stats;
void store_get_stats(store *s, store_stats *out);

/* Flushes memtables (and the in-memory index slice) and compacts everything: for tools
 * measuring bytes per event. */
int store_compact_all(store *s) MAMORI_WUR;

/* Small metadata values in the meta column family (API keys, settings), by string key. */
int store_meta_put(store *s, const char *key, const void *value, size_t len) MAMORI_WUR;
int store_meta_get(store *s, const char *key, buf *value_out) MAMORI_WUR; /* replaces value_out; -ENOENT if absent */

/* ---- listings (store/listing.c; for the API) ---- */

/* Calls fn(ctx, agent_hash, durable_seq) for every agent of the tenant that has stored a
 * batch (from the in-memory registry; no I/O). fn returns non-zero to stop. Returns 0, or 1
 * when stopped. */
/* agent_id: as recorded with the agent's first batch; NULL for agents stored before ids were
 * recorded (until their next batch). Store-owned, valid while the store is open. */
typedef int (*store_agent_fn)(void *ctx, uint64_t agent_hash, uint64_t durable_seq, const char *agent_id);
int store_list_agents(store *s, uint64_t tenant_hash, store_agent_fn fn, void *ctx);
/* Calls fn for every meta entry whose key starts with prefix, in key order (key and value
 * borrowed for the call). Returns 0, 1 when stopped, or a negative errno. */
typedef int (*store_meta_fn)(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len);
int store_meta_scan(store *s, const char *prefix, store_meta_fn fn, void *ctx) MAMORI_WUR;
/* Removes one meta entry (absent is not an error). */
int store_meta_delete(store *s, const char *key) MAMORI_WUR;

/* ---- alerts (store/alerts.c; layouts in docs/storage.md "alerts") ----
 *
 * One record per (rule, event), keyed by a deterministic id, plus index entries by time,
 * host, rule, level and status whose keys sort newest first inside a tenant; an outbox entry
 * per new alert (for webhook delivery); and the detection watermarks ("detected up to seq"
 * per agent) in the state column family, written in the same RocksDB write as the alerts. */

#define STORE_ALERT_ID_BYTES 16u
#define STORE_ALERT_ID_HEX_CHARS 32u
#define STORE_ALERT_ASSIGNEE_MAX 256u

enum store_alert_status { STORE_ALERT_NEW = 0, STORE_ALERT_ACKNOWLEDGED, STORE_ALERT_CLOSED, STORE_ALERT_STATUS_COUNT };
/* "new", "acknowledged", "closed". */
const char *store_alert_status_name(enum store_alert_status st);
int store_alert_status_parse(const char *s, size_t len, enum store_alert_status *out) MAMORI_WUR;

/* The id of the alert a rule raises on an event: XXH3-128 of tenant, agent, batch seq,
 * index in the batch and the rule's key (its Sigma id, or its title when it has none). The
 * event's position in its agent's stream, not its time, so an identical resend or a
 * re-detection after a crash gives the same id. */
void store_alert_id(uint8_t out[STORE_ALERT_ID_BYTES], uint64_t tenant_hash, uint64_t agent_hash, uint64_t seq,
                    uint32_t index, const char *rule_key, size_t rule_key_len);
/* Lowercase hex (32 characters, NUL-terminated). */
void store_alert_id_format(const uint8_t id[STORE_ALERT_ID_BYTES], char out[STORE_ALERT_ID_HEX_CHARS + 1]);
int store_alert_id_parse(const char *s, size_t len, uint8_t out[STORE_ALERT_ID_BYTES]) MAMORI_WUR;
/* Hash of a filter term (host id or name, rule id) as indexed: ASCII-lowercased, XXH3.
 * 0 is reserved for "absent" (a term hashing to 0 is mapped to 1). */
uint64_t store_alert_term_hash(const char *s, size_t len);

/* An alert. The body is the immutable part as one JSON object ({"time":…,"rule":{…},…});
 * status, assignee, created and updated live beside it so an update never parses JSON. */
typedef struct store_alert {
    uint64_t tenant_hash;
    const char *tenant;           /* name (outbox entries); may be NULL when reading */
    uint8_t id[STORE_ALERT_ID_BYTES];
    int64_t ts_us;                /* the triggering event's time: the listing order */
    int64_t created_us, updated_us;
    uint8_t level;                /* enum detect_level (0 none … 5 critical) */
    uint8_t status;               /* enum store_alert_status */
    uint64_t rule_hash;           /* store_alert_term_hash(rule id) */
    uint64_t host_id_hash;        /* store_alert_term_hash(host.id), 0 if absent */
    uint64_t host_name_hash;      /* store_alert_term_hash(host.name), 0 if absent */
    const char *assignee;         /* "" when none */
    uint32_t assignee_len;
    const char *body;             /* a JSON object */
    uint32_t body_len;
} store_alert;

/* "Detected up to": the highest batch seq of an agent whose detection is complete and whose
 * alerts are durable, and when that batch was received. */
typedef struct store_detect_mark {
    uint64_t tenant_hash, agent_hash;
    uint64_t seq;
    int64_t received_us;
} store_detect_mark;

/* Writes, in ONE RocksDB write, every alert whose id is not stored yet (record, index
 * entries, outbox entry) and the watermarks (a mark never lowers a stored one). Alerts that
 * exist already — a re-run, a resend — are skipped and keep their status; written[i] (may be
 * NULL) says which were new. Synced per store options when an alert is written; a
 * marks-only write is not synced (losing it only means re-detecting). Borrows everything. */
int store_alerts_commit(store *s, const store_alert *alerts, size_t count, const store_detect_mark *marks,
                        size_t mark_count, bool *written, uint32_t *written_count) MAMORI_WUR;

/* Other state written in the same RocksDB write as alerts and watermarks (state column
 * family): correlation checkpoints (server/detect_corr.c). Applied in this order, in the same
 * write: delete_prefix and delete_ranges (every key starting with them), deletes, puts. */
typedef struct store_state_put {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
} store_state_put;
typedef struct store_state_write {
    const char *delete_prefix;           /* a C-string prefix, or NULL */
    const store_state_put *delete_ranges; /* .key: a prefix removed (value unused) */
    size_t delete_range_count;
    const store_state_put *deletes; /* .key: one key removed */
    size_t delete_count;
    const store_state_put *puts;
    size_t put_count;
} store_state_write;
/* store_alerts_commit plus state (may be NULL). The write is synced when it holds a new
 * alert or state. Borrows everything. */
int store_alerts_commit_state(store *s, const store_alert *alerts, size_t count, const store_detect_mark *marks,
                              size_t mark_count, const store_state_write *state, bool *written,
                              uint32_t *written_count) MAMORI_WUR;
/* Calls fn for every state key starting with prefix, in key order (borrowed for the call;
 * fn returns non-zero to stop). Returns 0, 1 when stopped, or a negative errno. */
typedef int (*store_state_fn)(void *ctx, const void *key, size_t key_len, const void *value, size_t value_len);
int store_state_scan(store *s, const void *prefix, size_t prefix_len, store_state_fn fn, void *ctx) MAMORI_WUR;

/* Reads one alert of a tenant into *out; the strings point into storage (replaced).
 * -ENOENT if absent (also when it belongs to another tenant). */
int store_alert_get(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ALERT_ID_BYTES], store_alert *out,
                    buf *storage) MAMORI_WUR;

/* Changes status and/or assignee (set_* false keeps it), sets updated_us, and rewrites the
 * index entries, atomically with respect to other updates. *out as for store_alert_get.
 * -ENOENT if absent, -EINVAL for an assignee over STORE_ALERT_ASSIGNEE_MAX bytes. */
int store_alert_update(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ALERT_ID_BYTES], bool set_status,
                       enum store_alert_status status, bool set_assignee, const char *assignee, size_t assignee_len,
                       int64_t updated_us, store_alert *out, buf *storage) MAMORI_WUR;

/* A listing: newest first (ts descending, then id ascending), filters ANDed. The store walks
 * the most selective index named (rule, host, status, level, else time) and checks the other
 * filters on the index entries, reading only the records it returns. */
typedef struct store_alert_query {
    uint64_t tenant_hash;
    int64_t from_us, to_us;     /* from_us <= ts < to_us */
    uint64_t rule_hash;         /* 0: any */
    uint64_t host_hash;         /* 0: any; matches host.id or host.name */
    int level;                  /* -1: any */
    int status;                 /* -1: any */
    bool after;                 /* continue after (after_ts_us, after_id) in listing order */
    int64_t after_ts_us;
    uint8_t after_id[STORE_ALERT_ID_BYTES];
    uint32_t limit;             /* alerts returned at most (>= 1) */
    uint64_t max_examined;      /* index entries looked at, at most (0: no bound) */
} store_alert_query;

typedef struct store_alert_page {
    uint32_t returned;
    uint64_t examined;
    bool more;                  /* another page exists (or the bound stopped the walk) */
    int64_t next_ts_us;         /* cursor for the next page when more */
    uint8_t next_id[STORE_ALERT_ID_BYTES];
} store_alert_page;

/* Calls fn for each alert of the page (borrowed for the call; fn returns non-zero to
 * stop, which ends the page there). */
typedef int (*store_alert_fn)(void *ctx, const store_alert *a);
int store_alerts_list(store *s, const store_alert_query *q, store_alert_fn fn, void *ctx,
                      store_alert_page *page) MAMORI_WUR;

/* The index key of an alert entry, for tests and tools: kind 'T' (time), 'H' (host, term =
 * host hash), 'R' (rule, term = rule hash), 'L' (level, term = level), 'S' (status, term =
 * status). Returns the key length (at most STORE_ALERT_INDEX_KEY_MAX). */
#define STORE_ALERT_INDEX_KEY_MAX 41u
size_t store_alert_index_key(uint8_t out[STORE_ALERT_INDEX_KEY_MAX], char kind, uint64_t tenant_hash, uint64_t term,
                             int64_t ts_us, const uint8_t id[STORE_ALERT_ID_BYTES]);

/* Every stored watermark (fn returns non-zero to stop). */
typedef int (*store_detect_mark_fn)(void *ctx, const store_detect_mark *m);
int store_detect_marks_scan(store *s, store_detect_mark_fn fn, void *ctx) MAMORI_WUR;
/* When detection first ran on this store (0 if never), and the latest receive time a
 * watermark write recorded (0 if none). */
int store_detect_state_get(store *s, int64_t *since_us, int64_t *checkpoint_us) MAMORI_WUR;
/* Records since_us (first run) together with marks (e.g. every agent's current durable seq). */
int store_detect_start(store *s, int64_t since_us, const store_detect_mark *marks, size_t mark_count) MAMORI_WUR;

/* Every agent of every tenant with a stored batch: (tenant hash, agent hash, durable seq),
 * from the in-memory registry. fn returns non-zero to stop. Returns 0, or 1 when stopped. */
typedef int (*store_any_agent_fn)(void *ctx, uint64_t tenant_hash, uint64_t agent_hash, uint64_t durable_seq);
int store_list_all_agents(store *s, store_any_agent_fn fn, void *ctx);
/* The name of a registered tenant into out (NUL-terminated); -ENOENT if unknown, -ENOSPC if
 * it does not fit. */
int store_tenant_name(store *s, uint64_t tenant_hash, char *out, size_t out_len) MAMORI_WUR;

/* ---- response: actions, fetched files, agent registry, audit (store/actions.c,
 * store/files.c, store/registry.c, store/audit.c; layouts in docs/storage.md) ----
 *
 * An action is persisted (record + pending-delivery index + expiry index + per-agent listing
 * entry, and the agent's desired isolation for isolate/release) in ONE RocksDB write, with
 * its audit entry, before anything is sent. Every later transition is one write too. Writes
 * of the commands column family are serialized by one process-wide lock (actions are rare
 * compared to events). */

#define STORE_ACTION_ID_BYTES 16u
#define STORE_ACTION_ID_HEX_CHARS 32u
#define STORE_ACTION_HISTORY_MAX 16u
#define STORE_ACTION_NAME_MAX 32u
#define STORE_ACTION_ACTOR_MAX 200u

enum store_action_status {
    STORE_ACTION_QUEUED = 0,
    STORE_ACTION_SENT,
    STORE_ACTION_RUNNING,
    STORE_ACTION_SUCCEEDED,
    STORE_ACTION_FAILED,
    STORE_ACTION_EXPIRED,
    STORE_ACTION_STATUS_COUNT
};
const char *store_action_status_name(enum store_action_status st);
int store_action_status_parse(const char *s, size_t len, enum store_action_status *out) MAMORI_WUR;
static inline bool store_action_status_final(enum store_action_status st) { return st >= STORE_ACTION_SUCCEEDED; }

/* Isolation states (desired and reported). */
enum store_isolation { STORE_ISOLATION_NONE = 0, STORE_ISOLATION_ISOLATED = 1, STORE_ISOLATION_UNKNOWN = 255 };
const char *store_isolation_name(int iso); /* "none", "isolated", or NULL for unknown */

/* A fresh random action id. */
void store_action_id_new(uint8_t out[STORE_ACTION_ID_BYTES]);
void store_action_id_format(const uint8_t id[STORE_ACTION_ID_BYTES], char out[STORE_ACTION_ID_HEX_CHARS + 1]);
int store_action_id_parse(const char *s, size_t len, uint8_t out[STORE_ACTION_ID_BYTES]) MAMORI_WUR;

typedef struct store_action_step {
    uint8_t status;
    int64_t at_us;
} store_action_step;

/* An action record. Strings are NUL-terminated; when read from the store they point into
 * the caller's storage buffer. args/output are JSON texts (output_len 0: none), error is
 * text (error_len 0: none). */
typedef struct store_action {
    uint64_t tenant_hash, agent_hash;
    uint8_t id[STORE_ACTION_ID_BYTES];
    uint64_t cmd_no; /* per-agent command number, assigned at creation (>= 1) */
    uint8_t status;  /* enum store_action_status */
    int64_t created_us, updated_us, expires_us;
    const char *tenant, *agent_id, *action, *actor;
    const char *args;
    uint32_t args_len;
    const char *output;
    uint32_t output_len;
    const char *error;
    uint32_t error_len;
    uint8_t history_count;
    store_action_step history[STORE_ACTION_HISTORY_MAX];
} store_action;

/* One audit log entry (store/audit.c). detail is a JSON text or NULL. Borrowed. */
typedef struct store_audit {
    int64_t at_us;
    uint64_t tenant_hash;
    const char *tenant, *actor, *what, *target, *result;
    const char *detail;
    size_t detail_len;
} store_audit;

/* Persists a new action (status queued, history [queued]) with a fresh command number,
 * its indexes, `desired_isolation` for the agent unless STORE_ISOLATION_UNKNOWN, and the
 * audit entry (may be NULL), in one write. a->cmd_no is set. -EDQUOT when the agent already
 * has max_pending actions waiting for delivery (nothing written). Borrows everything. */
int store_action_create(store *s, store_action *a, uint32_t max_pending, int desired_isolation,
                        const store_audit *audit) MAMORI_WUR;
/* Reads one action of a tenant (-ENOENT also for another tenant's). */
int store_action_get(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ACTION_ID_BYTES], store_action *out,
                     buf *storage) MAMORI_WUR;
/* Makes every write so far survive a power loss (fsync of the WAL) when store.sync is on;
 * 0 at once otherwise. store_action_update and store_actions_update_batch do not sync: their
 * caller groups many of them under one store_sync_wal (group commit). */
int store_sync_wal(store *s) MAMORI_WUR;
/* Moves an action to `status` at at_us with its output/error (NULL/0 keeps what it had),
 * appending to its history, and writes the audit entry (may be NULL), in one write. A final
 * action is never changed: -EALREADY. A move to a status at or before the current one
 * (e.g. sent again after a reconnect) changes nothing and returns 0. Reaching a final
 * status removes the action from the pending-delivery and expiry indexes. *out (may be NULL)
 * gets the record as stored afterwards. */
int store_action_update(store *s, uint64_t tenant_hash, const uint8_t id[STORE_ACTION_ID_BYTES],
                        enum store_action_status status, int64_t at_us, const char *output, size_t output_len,
                        const char *error, size_t error_len, const store_audit *audit, store_action *out,
                        buf *storage) MAMORI_WUR;
/* The same move (a non-final status, no output) for n actions of a tenant in ONE write (e.g.
 * everything delivered to a reconnecting agent marked sent with one WAL append), each with
 * audits[i] (audits may be NULL). changed[i] says which moved (false: already there or
 * further, final, or absent). On a write error nothing moved. */
int store_actions_update_batch(store *s, uint64_t tenant_hash, const uint8_t (*ids)[STORE_ACTION_ID_BYTES], size_t n,
                               enum store_action_status status, int64_t at_us, const store_audit *audits,
                               bool *changed) MAMORI_WUR;
/* Calls fn for every action of the agent waiting for delivery or a final result, in
 * command-number order (fn returns non-zero to stop). */
typedef int (*store_pending_fn)(void *ctx, uint64_t cmd_no, const uint8_t id[STORE_ACTION_ID_BYTES]);
int store_actions_pending(store *s, uint64_t tenant_hash, uint64_t agent_hash, store_pending_fn fn,
                          void *ctx) MAMORI_WUR;
/* Calls fn for every non-final action whose expires_us <= now_us (expiry order). */
typedef int (*store_expired_fn)(void *ctx, uint64_t tenant_hash, const uint8_t id[STORE_ACTION_ID_BYTES]);
int store_actions_expired(store *s, int64_t now_us, store_expired_fn fn, void *ctx) MAMORI_WUR;
/* An agent's actions newest first (status < 0: any), continuing below before_cmd_no when
 * it is non-zero. *next_cmd_no is 0 at the end, else the cursor for the next page. */
typedef int (*store_action_fn)(void *ctx, const store_action *a);
int store_actions_list(store *s, uint64_t tenant_hash, uint64_t agent_hash, int status, uint64_t before_cmd_no,
                       uint32_t limit, uint64_t max_examined, store_action_fn fn, void *ctx,
                       uint64_t *next_cmd_no) MAMORI_WUR;

/* ---- fetched files (files column family): content stored once per tenant and sha256 ---- */
#define STORE_SHA256_BYTES 32u
/* Not synced by itself (see store_sync_wal). */
int store_file_put(store *s, uint64_t tenant_hash, const uint8_t sha256[STORE_SHA256_BYTES], const void *data,
                   size_t len) MAMORI_WUR;
/* -ENOENT if absent (or another tenant's). Replaces out. */
int store_file_get(store *s, uint64_t tenant_hash, const uint8_t sha256[STORE_SHA256_BYTES], buf *out) MAMORI_WUR;

/* ---- agent registry (agents column family, tags 0x03 and 0x04) ---- */
/* The registry record: a JSON object written by the response service (first/last seen,
 * address, versions, host facts, capabilities, online, reported isolation). */
int store_agent_info_put(store *s, uint64_t tenant_hash, uint64_t agent_hash, const char *json,
                         size_t len) MAMORI_WUR;
int store_agent_info_get(store *s, uint64_t tenant_hash, uint64_t agent_hash, buf *out) MAMORI_WUR;
/* Every registry record of a tenant (fn returns non-zero to stop). */
typedef int (*store_agent_info_fn)(void *ctx, uint64_t agent_hash, const char *json, size_t len);
int store_agent_info_scan(store *s, uint64_t tenant_hash, store_agent_info_fn fn, void *ctx) MAMORI_WUR;
/* The same over every tenant. */
typedef int (*store_agent_info_all_fn)(void *ctx, uint64_t tenant_hash, uint64_t agent_hash, const char *json,
                                       size_t len);
int store_agent_info_scan_all(store *s, store_agent_info_all_fn fn, void *ctx) MAMORI_WUR;
/* Desired isolation (written by store_action_create); STORE_ISOLATION_NONE and at 0 when
 * never set. */
int store_agent_isolation_get(store *s, uint64_t tenant_hash, uint64_t agent_hash, int *desired,
                              int64_t *at_us) MAMORI_WUR;
/* Every agent with a desired isolation record, for the response service's cache. */
typedef int (*store_isolation_fn)(void *ctx, uint64_t tenant_hash, uint64_t agent_hash, int desired, int64_t at_us);
int store_agent_isolation_scan(store *s, store_isolation_fn fn, void *ctx) MAMORI_WUR;

/* ---- audit log (meta column family, "audit/" + tenant + newest-first time + sequence) ---- */
/* Appends one entry (its own write). */
int store_audit_append(store *s, const store_audit *a) MAMORI_WUR;
/* A tenant's entries newest first with from_us <= at < to_us, continuing after the cursor
 * (after_at_us, after_seq) when after is set. fn gets the entry's JSON (borrowed) and its
 * position (for the cursor); returns non-zero to stop. */
typedef struct store_audit_pos {
    int64_t at_us;
    uint64_t seq;
} store_audit_pos;
typedef int (*store_audit_fn)(void *ctx, const char *json, size_t len, const store_audit_pos *pos);
int store_audit_list(store *s, uint64_t tenant_hash, int64_t from_us, int64_t to_us, const store_audit_pos *after,
                     store_audit_fn fn, void *ctx) MAMORI_WUR;

#endif
