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

/* Iterates stored events of a tenant in key order within [from_us, to_us). fn gets the
 * reference and the JSON (borrowed for the call); returns non-zero to stop. */
typedef int (*store_event_fn)(void *ctx, const store_event_ref *ref, const char *json, size_t json_len);
int store_scan_events(store *s, const char *tenant, int64_t from_us, int64_t to_us, store_event_fn fn,
                      void *ctx) MAMORI_WUR;

typedef struct store_stats {
    uint64_t events_written;       /* since open */
    uint64_t batches_written;
    uint64_t batches_duplicate;
    uint64_t group_commits;
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
typedef int (*store_agent_fn)(void *ctx, uint64_t agent_hash, uint64_t durable_seq);
int store_list_agents(store *s, uint64_t tenant_hash, store_agent_fn fn, void *ctx);
/* Calls fn for every meta entry whose key starts with prefix, in key order (key and value
 * borrowed for the call). Returns 0, 1 when stopped, or a negative errno. */
typedef int (*store_meta_fn)(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len);
int store_meta_scan(store *s, const char *prefix, store_meta_fn fn, void *ctx) MAMORI_WUR;
/* Removes one meta entry (absent is not an error). */
int store_meta_delete(store *s, const char *key) MAMORI_WUR;

#endif
