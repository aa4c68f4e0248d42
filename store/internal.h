/* store/internal.h — private to store/: the store object, key and posting codecs, the
 * in-memory index slice and the helpers the store files share. See docs/storage.md
 * for the on-disk layouts these functions implement. */
#ifndef MAMORI_STORE_INTERNAL_H
#define MAMORI_STORE_INTERNAL_H

#include "store/store.h"

#include "core/arena.h"
#include "core/json.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

/* ---- column families ---- */
enum store_cf {
    CF_DEFAULT = 0, /* RocksDB requires it; unused */
    CF_EVENTS,
    CF_INDEX,
    CF_ALERTS,
    CF_AGENTS,
    CF_COMMANDS,
    CF_FILES,
    CF_OUTBOX,
    CF_STATE,
    CF_META,
    CF_COUNT
};

/* ---- limits ---- */
#define IX_VALUE_MAX 192u               /* value bytes kept in an index key; longer: prefix + hash */
#define IX_KEY_PREFIX_BYTES 13u         /* tenant_hash u64 | day u32 | field u8 */
#define IX_KEY_SUFFIX_BYTES 16u         /* min_ts u64 | slice_id u64 */
#define IX_TERM_MAX (IX_VALUE_MAX * 2 + 2 + 8)
#define IX_KEY_MAX (IX_KEY_PREFIX_BYTES + IX_TERM_MAX + IX_KEY_SUFFIX_BYTES)
#define IX_CLOSED_SLICES_MAX 2u         /* closed slices waiting for the background writer */
#define IX_SLICE_EVENTS_MAX (1u << 30)  /* event numbers are u32 */
#define IX_LOOKUP_PREFIX_DAY_BYTES_MAX ((size_t)512 << 20) /* postings held per day in prefix mode */
#define STORE_AGENT_KEY_BYTES 17u       /* tenant_hash | agent_hash | tag */
#define STORE_AGENT_TAG_DURABLE_SEQ 0x01u
#define STORE_AGENT_TAG_ID 0x02u          /* value: the agent id (its certificate CN) */
#define STORE_AGENT_TAG_INFO 0x03u        /* value: the registry record (JSON, store/registry.c) */
#define STORE_AGENT_TAG_ISOLATION 0x04u   /* value: desired isolation u8, set at i64 (µs) */
#define STORE_IXLOG_PREFIX "ixlog/"
#define STORE_IXLOG_PREFIX_LEN 6u
#define STORE_IXLOG_KEY_BYTES (STORE_IXLOG_PREFIX_LEN + 8u)
#define STORE_SLICE_NEXT_KEY "ixslice/next"
#define STORE_SLICE_OPEN_KEY "ixslice/open" /* slice_id | first_group | last_group, be64 each */
#define STORE_SLICE_TMP_DIR "ixtmp"
#define STORE_TENANT_META_PREFIX "tenant/"
#define STORE_TENANT_NAME_MAX 256u

_Static_assert(STORE_IX_FIELD_COUNT_PLUS_ONE <= 255, "field fits a key byte");
_Static_assert(IX_VALUE_MAX < 65535, "value length fits u16");

/* ---- varints and small codecs (codec.c) ---- */
static inline uint64_t zigzag_encode(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t zigzag_decode(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }
/* Writes v as a LEB128 varint at p (room for 10 bytes); returns bytes written. */
size_t varint_put(uint8_t *p, uint64_t v);
void buf_put_varint(buf *b, uint64_t v);
/* Reads a varint from [*p, end); advances *p. -EBADMSG when truncated or too long. */
int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v) MAMORI_WUR;

/* Day bucket of a timestamp: days since the epoch, clamped to [0, UINT32_MAX]. */
uint32_t store_day_of_us(int64_t ts_us);
static inline int64_t store_day_start_us(uint32_t day) { return (int64_t)day * 86400LL * 1000000LL; }
void store_event_key_full(uint8_t out[STORE_EVENT_KEY_BYTES], uint64_t tenant_hash, const store_event_ref *ref);
void store_event_key_decode(const uint8_t key[STORE_EVENT_KEY_BYTES], uint64_t *tenant_hash, uint32_t *day,
                            store_event_ref *ref);
void store_agent_key(uint8_t out[STORE_AGENT_KEY_BYTES], uint64_t tenant_hash, uint64_t agent_hash);
void store_agent_key_tag(uint8_t out[STORE_AGENT_KEY_BYTES], uint64_t tenant_hash, uint64_t agent_hash, uint8_t tag);
void store_ixlog_key(uint8_t out[STORE_IXLOG_KEY_BYTES], uint64_t group_no);
int store_ref_cmp(const store_event_ref *a, const store_event_ref *b);
static inline bool store_ref_eq(const store_event_ref *a, const store_event_ref *b)
{
    return a->ts_us == b->ts_us && a->agent_hash == b->agent_hash && a->seq == b->seq && a->index == b->index;
}

/* An index term: a lowercased value as it is keyed. Values longer than IX_VALUE_MAX keep
 * their first IX_VALUE_MAX bytes plus a hash of the whole value. */
typedef struct ix_term {
    const uint8_t *value; /* lowercased, at most IX_VALUE_MAX bytes */
    uint16_t len;
    bool truncated;
    uint64_t full_hash; /* mamori_hash64 of the whole lowercased value when truncated, else 0 */
} ix_term;

/* Lowercases value into scratch (cleared first) and describes the term. The term borrows
 * scratch. */
void ix_term_make(buf *scratch, const char *value, size_t len, ix_term *out);
/* Escaped term bytes (order-preserving: 0x00 -> 0x00 0xFF, then 0x00 0x01 for a whole
 * value or 0x00 0x02 + be64 hash for a truncated one). Returns bytes written (<= IX_TERM_MAX). */
size_t ix_term_encode(uint8_t *out, const ix_term *t);
/* Escapes raw bytes without a terminator (for prefix seeks). */
size_t ix_escape(uint8_t *out, const uint8_t *value, size_t len);
/* Index key: prefix | term | min_ts | slice_id. Returns the length (<= IX_KEY_MAX). */
size_t ix_key_encode(uint8_t *out, uint64_t tenant_hash, uint32_t day, uint8_t field, const ix_term *t,
                     int64_t min_ts, uint64_t slice_id);
void ix_key_prefix(uint8_t out[IX_KEY_PREFIX_BYTES], uint64_t tenant_hash, uint32_t day, uint8_t field);
/* Hash of the whole term identity (tenant, day, field, term): the in-memory map key. */
uint64_t ix_term_hash(uint64_t tenant_hash, uint32_t day, uint8_t field, const ix_term *t);

/* ---- posting lists (posting.c) ---- */
typedef struct ix_encoder {
    /* agent hash -> slot, generation-stamped so a new posting costs nothing to reset */
    uint64_t *agent_keys;
    uint32_t *agent_slots;
    uint32_t *agent_gen;
    uint32_t table_mask;
    uint32_t gen;
    uint64_t *agents; /* slot -> hash, in order of first appearance */
    uint64_t *last_seq;
    uint32_t *last_index;
    uint32_t agent_cap;
    buf body;
} ix_encoder;
void ix_encoder_init(ix_encoder *e);
void ix_encoder_fini(ix_encoder *e);
/* Encodes refs[0..n) (sorted ascending, no duplicates, n >= 1) as a posting value into out
 * (appended). min_ts is refs[0].ts_us and goes into the key, not the value. */
void ix_posting_encode(ix_encoder *e, const store_event_ref *refs, size_t n, buf *out);

typedef struct ix_cursor {
    const uint8_t *p, *end;
    const uint8_t *agents; /* agent table inside the value (be64 each) */
    uint32_t agent_count;
    uint32_t remaining;
    uint32_t prev_slot;
    int64_t max_ts;
    store_event_ref cur;
    uint64_t *last_seq; /* per slot; points at inline storage or malloc'd */
    uint32_t *last_index;
    uint64_t inline_seq[8];
    uint32_t inline_index[8];
    void *heap_state;
} ix_cursor;
/* Reads the header. The cursor borrows value (which must outlive it). */
int ix_cursor_open(ix_cursor *c, const uint8_t *value, size_t len, int64_t min_ts) MAMORI_WUR;
/* Next entry into c->cur: 1 if one was decoded, 0 at the end, -EBADMSG if corrupt. */
int ix_cursor_next(ix_cursor *c) MAMORI_WUR;
void ix_cursor_close(ix_cursor *c);
/* A posting's header, read without decoding entries. */
typedef struct ix_posting_info {
    uint32_t count;
    int64_t max_ts;
    const uint8_t *agents; /* agent_count x be64, inside the value */
    uint32_t agent_count;
} ix_posting_info;
int ix_posting_header(const uint8_t *value, size_t len, int64_t min_ts, ix_posting_info *out) MAMORI_WUR;
/* max_ts from a posting header without opening a cursor. */
int ix_posting_max_ts(const uint8_t *value, size_t len, int64_t min_ts, int64_t *max_ts) MAMORI_WUR;

/* ---- indexed values of an event (extract.c) ---- */
typedef void (*ix_value_fn)(void *ctx, enum store_index_field f, const char *value, size_t len);
/* Calls fn for every indexed value of a normalized event (arrays: each scalar element). */
void ix_extract_event(const mamori_event *ev, ix_value_fn fn, void *ctx);
/* The same from the event's canonical JSON (recovery, lookups re-checking long values). */
void ix_extract_json(const json_value *root, ix_value_fn fn, void *ctx);

/* ---- in-memory slice (slice.c) ---- */
typedef struct ix_posting {
    uint64_t tenant_hash;
    uint64_t term_hash;
    uint64_t full_hash;
    const uint8_t *value; /* in the slice arena */
    uint32_t day;
    uint16_t value_len;
    uint8_t field;
    uint8_t truncated;
    uint32_t count;
    uint32_t last_event;
    uint32_t first_block; /* offsets into the slice's block pool */
    uint32_t last_block;
} ix_posting;

typedef struct ix_day_ref {
    uint64_t tenant_hash;
    uint32_t day;
} ix_day_ref;

typedef struct ix_slice {
    struct ix_slice *next; /* closed-slice queue */
    arena values;
    store_event_ref *events;
    uint32_t event_count, event_cap;
    ix_posting *postings;
    uint32_t posting_count, posting_cap;
    uint64_t *table; /* (hash tag << 32) | (posting + 1), 0 = empty */
    uint32_t table_mask;
    uint32_t *pool; /* posting blocks: [next, cap, used, entries...] */
    size_t pool_len, pool_cap;
    ix_day_ref *days; /* distinct (tenant, day) pairs present */
    uint32_t day_count, day_cap;
    uint64_t entries;
    uint64_t first_group, last_group; /* pending-index log groups covered */
    bool has_groups;
    int64_t opened_mono_ms;
} ix_slice;

ix_slice *ix_slice_create(void);
void ix_slice_destroy(ix_slice *sl);
size_t ix_slice_bytes(const ix_slice *sl);
bool ix_slice_empty(const ix_slice *sl);
uint32_t ix_slice_add_event(ix_slice *sl, const store_event_ref *ref);
void ix_slice_add_term(ix_slice *sl, uint32_t event_no, uint64_t tenant_hash, uint32_t day, uint8_t field,
                       const ix_term *t, uint64_t term_hash);
void ix_slice_note_group(ix_slice *sl, uint64_t group_no);
/* Appends to out every ref of the slice matching the query (exact or prefix, ts range). */
typedef struct ix_query {
    uint64_t tenant_hash;
    uint8_t field;
    bool prefix;
    ix_term term;           /* exact mode */
    const uint8_t *pfx;     /* prefix mode: lowercased prefix, at most IX_VALUE_MAX bytes */
    size_t pfx_len;
    bool pfx_truncated_only; /* prefix longer than IX_VALUE_MAX: only truncated terms qualify */
    int64_t from_us, to_us;
} ix_query;
typedef struct ref_vec {
    store_event_ref *v;
    size_t n, cap;
} ref_vec;
void ref_vec_push(ref_vec *rv, const store_event_ref *r);
void ref_vec_fini(ref_vec *rv);
void ix_slice_collect(const ix_slice *sl, const ix_query *q, ref_vec *out);
/* Encodes the slice's postings and hands them to emit in ascending key order (what an
 * SST file writer needs). Postings of days before floor(tenant) are skipped (retention
 * already removed them). The output depends only on the slice's refs and terms and on
 * slice_id, never on arrival order: recovery rebuilds a crashed slice byte for byte.
 * Returns 0 or the first non-zero result of emit. */
typedef uint32_t (*ix_floor_fn)(void *ctx, uint64_t tenant_hash);
typedef int (*ix_emit_fn)(void *ctx, const uint8_t *key, size_t klen, const char *value, size_t vlen);
int ix_slice_build(ix_slice *sl, uint64_t slice_id, ix_encoder *enc, ix_floor_fn floor_fn, void *floor_ctx,
                   ix_emit_fn emit, void *emit_ctx, uint64_t *postings_written, uint64_t *bytes_written) MAMORI_WUR;

/* ---- agent durable seqs (write.c) ---- */
typedef struct agent_entry {
    uint64_t tenant_hash, agent_hash;
    uint64_t durable_seq;
    uint64_t pending_seq;
    uint64_t pending_gen;
    char *id; /* agent id; NULL for agents stored before ids were recorded. Set once, freed at
               * close: a pointer read under agents_mu stays valid while the store is open */
} agent_entry;

typedef struct tenant_entry {
    uint64_t hash;
    char *name;
    uint32_t retention_days;
    uint32_t floor_day; /* days before this were removed by retention */
    bool persisted;     /* its registry entry is in the meta column family */
    uint64_t pending_gen;
} tenant_entry;

/* ---- a group's index terms, between the group commit and the slice (terms.c) ---- */
typedef struct pending_event {
    store_event_ref ref;
    uint64_t tenant_hash;
    uint32_t day;
    uint32_t first_term;
    uint32_t term_count;
    const mamori_event *ev; /* borrowed until the group commit returns */
} pending_event;

typedef struct pending_term {
    uint64_t term_hash;
    uint64_t full_hash;
    uint32_t value_off;
    uint16_t len;
    uint8_t field;
    uint8_t truncated;
} pending_term;

enum term_group_state { TG_FREE = 0, TG_EXTRACT, TG_EXTRACTED, TG_COMMITTED };

typedef struct term_group {
    pending_event *events;
    size_t event_count, event_cap;
    pending_term *terms;
    size_t term_count, term_cap;
    buf values;  /* lowercased term bytes */
    buf scratch; /* lowercasing */
    uint64_t group_no;
    bool has_log;
    int state; /* enum term_group_state, under tw_mu */
    uint64_t commit_seq;
} term_group;

/* ---- the store ---- */
struct store {
    rocksdb_t *db;
    rocksdb_options_t *db_options;
    rocksdb_options_t *cf_options[CF_COUNT];
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_cache_t *block_cache;
    rocksdb_writeoptions_t *write_options;    /* group commits: sync per options */
    rocksdb_writeoptions_t *ix_write_options; /* slice writes: unsynced; the marker is followed by a WAL sync */
    rocksdb_readoptions_t *read_options;
    store_options opt;
    char *path;
    char *tmp_dir; /* <path>/ixtmp: slice files before ingestion */
    rocksdb_envoptions_t *env_options;
    rocksdb_options_t *slice_file_options; /* index options, compressed for speed */
    rocksdb_ingestexternalfileoptions_t *ingest_options;
    store_tenant_retention *overrides;

    /* writer thread only */
    rocksdb_writebatch_t *wb;
    buf ixlog;
    uint64_t next_group_no;
    uint64_t gen;
    pending_event **sorted;
    size_t sorted_cap;
    uint32_t *touched_agents;
    size_t touched_count, touched_cap;
    uint32_t last_tenant; /* writer's cache: index of the tenant of the previous batch */
    bool tenant_put_pending; /* this group registers a tenant */

    /* the term worker (terms.c): two group buffers alternate */
    pthread_t tw_thread;
    bool tw_started, tw_stop;
    pthread_mutex_t tw_mu;
    pthread_cond_t tw_cv;
    term_group tg[2];
    uint32_t tg_next;                  /* writer thread only */
    uint64_t tw_committed, tw_inserted; /* under tw_mu */

    /* durable seqs: mutated by the writer under agents_mu, read by anyone under it */
    pthread_mutex_t agents_mu;
    agent_entry *agents;
    uint32_t agent_count, agent_cap;
    uint32_t *agent_table; /* entry + 1, 0 = empty */
    uint32_t agent_table_mask;

    /* tenants registry */
    pthread_mutex_t tenants_mu;
    tenant_entry *tenants;
    uint32_t tenant_count, tenant_cap;

    /* index slices: contents under ix_rw (writer inserts hold it for writing, lookups for
     * reading); the closed queue and flags under ix_mu as well (modifiers hold both). */
    pthread_rwlock_t ix_rw;
    pthread_mutex_t ix_mu;
    pthread_cond_t ix_cv;
    ix_slice *active;
    ix_slice *closed_head, *closed_tail;
    uint32_t closed_count;
    bool ix_stop;
    int ix_error; /* last background write failure, 0 when the last one succeeded */
    uint64_t ix_failures; /* background write failures so far */
    pthread_t ix_thread;
    bool ix_thread_started;
    uint64_t next_slice_id; /* background thread (and open) only */
    ix_encoder encoder;     /* background thread (and open) only */

    /* counters */
    _Atomic uint64_t events_written, batches_written, batches_duplicate, group_commits;
    _Atomic uint64_t group_commit_errors; /* failed group commits (the caller retries) */
    _Atomic uint64_t slices_flushed, entries_pending, retention_ranges_deleted;
    _Atomic uint64_t slice_flush_us_total, slice_flush_us_max, writer_waits;
    _Atomic uint64_t recovered_events;
};

/* ---- helpers shared across files ---- */
/* Maps a RocksDB error string to a negative errno, logs it (rate-limited) naming what,
 * and frees err. */
int store_rocks_error(char *err, const char *what);
/* Copies the value of key in column family cf into out (cleared first): 0, -ENOENT when
 * absent, or a RocksDB error logged as `what`. */
int store_cf_get(store *s, enum store_cf cf, const void *key, size_t key_len, buf *out, const char *what) MAMORI_WUR;
/* Calls fn for every key of cf starting with prefix, in key order, until fn returns non-zero:
 * 0 when all were visited, 1 when fn stopped it, or a RocksDB error logged as `what`. */
int store_cf_scan(store *s, enum store_cf cf, const void *prefix, size_t prefix_len, store_state_fn fn, void *ctx,
                  const char *what) MAMORI_WUR;
/* Writes the slice synchronously (used by the background thread and by recovery) under
 * slice id `slice_id`: marker, SST file, ingestion, then the pending-log deletion. */
int ix_write_slice_as(store *s, ix_slice *sl, uint64_t slice_id) MAMORI_WUR;
/* Test hook (NULL in production): called between the steps of a slice write with 1 after
 * the marker, 2 after the ingestion, so crash tests can die exactly there. */
extern void (*ix_test_hook)(int step);
/* The same with the next fresh slice id. */
int ix_write_slice(store *s, ix_slice *sl) MAMORI_WUR;
int ix_thread_start(store *s) MAMORI_WUR;
/* The term worker. The writer acquires a group buffer, fills its events, starts the
 * extraction, writes, waits for the extraction, then commits (or discards) the group. */
int tw_start(store *s) MAMORI_WUR;
void tw_stop(store *s);
term_group *tw_acquire(store *s);
pending_event *tw_add_event(term_group *g);
void tw_start_extract(store *s, term_group *g);
void tw_wait_extracted(store *s, term_group *g);
void tw_commit(store *s, term_group *g, bool has_log, uint64_t group_no);
void tw_discard(store *s, term_group *g);
/* Returns once every group committed so far is in the in-memory slice. */
void tw_sync(store *s);
void ix_thread_stop(store *s);
/* Moves the active slice to the closed queue when it is not empty. Caller holds both locks. */
void ix_close_active_locked(store *s);
/* Blocks while too many closed slices wait; returns the background error if writing them fails. */
int ix_wait_room(store *s) MAMORI_WUR;
int store_recover_index(store *s) MAMORI_WUR;
int store_load_agents(store *s) MAMORI_WUR;
int store_load_tenants(store *s) MAMORI_WUR;
uint32_t store_tenant_retention_days(const store *s, const char *tenant);
uint32_t store_tenant_floor_day(store *s, uint64_t tenant_hash);
/* Writer thread: makes sure the tenant is registered; puts its registry entry into wb (once
 * per group) while it is not yet persisted. Returns its index in s->tenants. */
uint32_t store_tenant_note(store *s, const char *tenant, uint64_t tenant_hash, rocksdb_writebatch_t *wb,
                           uint64_t *bytes);
/* After a successful group commit: entries put by that group are now persisted. */
void store_tenants_commit(store *s, uint64_t gen);
void store_free_writer_state(store *s);
/* Appends an audit entry to a write batch (audit.c). */
void store_audit_put(store *s, rocksdb_writebatch_t *wb, const store_audit *a);
void store_free_registries(store *s);

#endif
