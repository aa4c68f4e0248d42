/* core/normalize_internal.h — private to the normalizer: only core/normalize*.c include it.
 * Holds the per-thread scratch (struct normalizer), the (path, value, kind) entries every
 * input shape becomes, small helpers, and the functions the three files call in each other.
 * No malloc per event: output comes from the caller's arena, scratch lives in the normalizer. */
#ifndef MAMORI_CORE_NORMALIZE_INTERNAL_H
#define MAMORI_CORE_NORMALIZE_INTERNAL_H

#include "clock.h"
#include "event.h"
#include "logsource.h"

#include <stddef.h>
#include <string.h>

/* Room beyond the input's own fields for what the normalizer adds (system fields,
 * stamps, enrichment); the final event is still held to EVENT_MAX_FIELDS. What it adds comes
 * from fixed tables and stays well inside the room, but the bound is not derived from them:
 * a push beyond ENTRY_CAP lands in a spare entry and the event is rejected as having too
 * many fields (entries_full), never an abort. Tests build the normalizer with a small
 * room (test_normalize_room) to take that path. */
#ifndef NORM_ENTRY_ROOM
#define NORM_ENTRY_ROOM 128
#endif
#define ENTRY_CAP (EVENT_MAX_FIELDS + NORM_ENTRY_ROOM)
#define EVENT_DATA_PREFIX "winlog.event_data."
#define EVENT_DATA_PREFIX_LEN (sizeof EVENT_DATA_PREFIX - 1)
#define RESOLVE_ROUNDS_MAX 4
#define NORM_POOL_BLOCK 1024u /* bytes of the arena an event's small allocations come from at a time */
_Static_assert(EVENT_DATA_PREFIX_LEN + 8 < EVENT_MAX_PATH_BYTES, "path limit leaves room for EventData names");

/* Who put a path there decides who keeps it when a path is claimed twice. */
enum entry_kind {
    KIND_WEAK = 0, /* defaults and enrichment: only if nothing else claims the path */
    KIND_INPUT,    /* as sent (ECS fields, unmapped EventData): twice is a rejection */
    KIND_MAPPED,   /* EventData moved to ECS by ecs_map: lowest prio wins, others go back */
    KIND_DERIVED,  /* winlog System fields, canonical @timestamp: overwrite input */
    KIND_STAMP,    /* mamori.*: overwrite everything */
};

struct entry {
    /* 16 path bytes in sort order, for fast comparisons: the first 16, or for a path under
     * winlog.event_data. (in_event_data) the 16 after that shared prefix. Keys compare only
     * between entries alike in in_event_data (norm_sort_entries sorts the two apart). */
    uint64_t key0, key1;
    /* The event_field this entry becomes, written when it is pushed (text, type and flags
     * from the value and the path then, as normalize_event used to at the end), so that the
     * field array is a copy per kept entry. */
    union {
        event_field field;
        struct {
            const char *path; /* NUL-terminated; arena or static */
            uint32_t path_len;
            uint32_t path_hash; /* event_path_hash(path, path_len): folds to a constant for literal paths */
            const json_value *value;
            const char *text;
            uint32_t text_len;
            uint8_t type;
            uint8_t flags; /* EVENT_FIELD_SERVER: the path starts with "mamori." */
            uint16_t reserved;
        };
    };
    const char *src_name; /* KIND_MAPPED: the EventData name it came from */
    uint32_t src_len;
    uint32_t prio; /* KIND_MAPPED: row index * 2 + (1 if matched only caselessly) */
    uint8_t kind;
    bool in_event_data; /* path starts with EVENT_DATA_PREFIX: keys are of the bytes after it */
    uint8_t sort_pos;   /* norm_order_shape: the entry's place in the order given to the sort
                         * (read only for events of <= SORT_CACHE_ENTRIES_MAX entries) */
};
#define ENTRY_FIELD_SAME(member) \
    _Static_assert(offsetof(struct entry, member) - offsetof(struct entry, field) == offsetof(event_field, member), \
                   "struct entry mirrors event_field: " #member)
ENTRY_FIELD_SAME(path);
ENTRY_FIELD_SAME(path_len);
ENTRY_FIELD_SAME(path_hash);
ENTRY_FIELD_SAME(value);
ENTRY_FIELD_SAME(text);
ENTRY_FIELD_SAME(text_len);
ENTRY_FIELD_SAME(type);
ENTRY_FIELD_SAME(flags);
ENTRY_FIELD_SAME(reserved);
#undef ENTRY_FIELD_SAME

struct event_data {
    const char *name; /* sanitized: no spaces; '.' only between nested levels */
    uint32_t name_len;
    int32_t member; /* NXLog: the top-level member it is, in n->nx_shape; -1 otherwise */
    const json_value *value;
};

/* What NXLog's top-level keys mean is a function of their bytes, and the ecs_map row of an
 * EventData name a function of its bytes and the logsource: both are remembered per event
 * *shape* — the sequence of top-level keys, checked byte for byte on every use — so events of
 * a shape seen before skip the key index, the name check and ecs_map_lookup. Everything that
 * depends on values (types, neighbours' presence, NXLog's EventType text) is decided per event
 * as before. Direct-mapped by a hash of the key lengths; larger events are not remembered. */
#define NX_SHAPE_SLOTS 64u
#define NX_SHAPE_MEMBERS_MAX 64u
#define NX_SHAPE_KEY_BYTES 1024u
#define NX_ECS_ROW_UNKNOWN 0xffffu
#define NX_ECS_ROW_NONE 0xfffeu
struct nx_member_info {
    uint64_t head, tail; /* the key's first and last 8 bytes (load_partial, zero-padded) */
    uint16_t key_off; /* in nx_shape_slot.keys */
    uint16_t key_len;
    uint16_t ecs_row;   /* for the slot's logsource: a row index, NX_ECS_ROW_NONE or _UNKNOWN */
    uint8_t nx_row;     /* nx_keys index + 1; 0 = an EventData name */
    uint8_t name_clean; /* sanitize_name leaves the key as it is */
    uint8_t low_bytes;  /* the key holds a byte below '.' */
    uint8_t ecs_exact;  /* ecs_row matched with exact case */
    uint8_t plain_event_data; /* an EventData name as it is: not in nx_keys, name_clean, no low
                               * bytes, its path within EVENT_MAX_PATH_BYTES */
};
/* nx_shape_slot.nxlog_by_keys: the keys alone make detect_shape answer NXLog (no "Event" or
 * "winlog" member, whose values it looks into), for format auto and for format winlog */
#define NX_BY_KEYS_AUTO 1u
#define NX_BY_KEYS_WINLOG 2u
struct nx_shape_slot {
    uint64_t lens_hash;
    uint32_t member_count; /* 0 = empty */
    uint8_t nxlog_by_keys; /* NX_BY_KEYS_* */
    bool ls_valid;
    struct logsource_set ls; /* what the members' ecs_row are for */
    struct nx_member_info members[NX_SHAPE_MEMBERS_MAX];
    char keys[NX_SHAPE_KEY_BYTES];
};

/* The System part of a winlog event, whatever shape it came in: borrowed values by slot. */
enum ws_slot {
    WS_CHANNEL = 0,
    WS_EVENT_ID,
    WS_PROVIDER_NAME,
    WS_PROVIDER_GUID,
    WS_COMPUTER,
    WS_RECORD_ID,
    WS_PID,
    WS_TID,
    WS_USER_ID,
    WS_USER_NAME,
    WS_USER_DOMAIN,
    WS_USER_TYPE,
    WS_VERSION,
    WS_LEVEL,
    WS_SEVERITY,
    WS_TASK,
    WS_OPCODE,
    WS_KEYWORDS,
    WS_ACTIVITY_ID,
    WS_RELATED_ACTIVITY_ID,
    WS_MESSAGE,
    WS_TIME_CREATED,
    WS_EVENT_TIME,
    WS_UTC_TIME, /* EventData UtcTime (Sysmon): a time fallback, stays in EventData */
    WS_HASHES,   /* EventData Hashes / Hash: enrichment source, stays in EventData */
    WS_COUNT
};

/* Sorting works on compact copies of the keys: comparisons stay in registers and only
 * paths sharing their first 16 bytes look at the bytes. */
struct sort_key {
    uint64_t key0, key1;
    struct entry *e;
};

/* logsource_from_winlog is a function of (channel bytes, event id) over static tables: its
 * answers are remembered per thread, direct-mapped (norm_winlog_finish). */
#define LS_CACHE_SLOTS 64u
#define LS_CACHE_CHANNEL_MAX 64u
struct winlog_source {
    struct logsource_set ls;
    struct logsource_winlog_ecs ecs;
    /* ecs.category and ecs.type as the JSON string items of event.category / event.type */
    json_value category_items[3], type_items[3];
    uint8_t category_count, type_count;
};
struct ls_cache_slot {
    int64_t event_id;
    uint32_t channel_len; /* 0 = empty slot (an empty channel is never cached) */
    char channel[LS_CACHE_CHANNEL_MAX];
    struct winlog_source source;
};

/* The order norm_sort_entries gave an event, remembered per thread by a hash of its entry
 * paths in the order given (the paths' event_path_hash): the next event with the same paths
 * is put in that order and the order is verified, pair by pair, with the sort's own
 * comparison — a verified order is the one stable sort (norm_sort_cached). Direct-mapped;
 * events with more entries than SORT_CACHE_ENTRIES_MAX are always sorted. */
#define SORT_CACHE_SLOTS 256u
#define NORM_SHAPE_MUL 0x9E3779B97F4A7C15ULL
#define SORT_CACHE_ENTRIES_MAX 255u
struct sort_cache_slot {
    uint64_t shape;
    uint32_t count; /* 0 = empty */
    uint8_t order[SORT_CACHE_ENTRIES_MAX]; /* at each sorted position, the place it came from */
};

struct normalizer {
    struct entry entries[ENTRY_CAP + 1]; /* the last: where pushes beyond ENTRY_CAP land */
    struct entry *order[ENTRY_CAP];
    struct entry *scratch[ENTRY_CAP];
    struct sort_key sort_keys[ENTRY_CAP];
    struct sort_key sort_tmp[ENTRY_CAP];
    struct sort_key sort_event_data[ENTRY_CAP];
    struct event_data event_data[EVENT_MAX_FIELDS];
    uint32_t entry_count;
    uint32_t event_data_count;
    bool entries_full; /* a push found ENTRY_CAP entries: the event is rejected */
    uint64_t paths_shape; /* the pushed entries' path hashes folded in push order (norm_order_shape's) */
    buf out;
    char path[EVENT_MAX_PATH_BYTES + 1];
    /* per event */
    arena *arena;
    char *err;
    size_t err_len;
    const json_value *timestamp; /* the input's @timestamp */
    bool low_bytes;              /* a path byte sorts below '.': bytewise order differs */
    bool winlogbeat;             /* flatten diverts winlog.* System and EventData paths */
    bool defer_json;             /* normalizer_set_defer_json */
    const json_value *ws[WS_COUNT];
    struct ls_cache_slot ls_cache[LS_CACHE_SLOTS];
    struct sort_cache_slot sort_cache[SORT_CACHE_SLOTS];
    struct nx_shape_slot nx_shapes[NX_SHAPE_SLOTS];
    struct nx_shape_slot *nx_shape; /* the current NXLog event's, or NULL */
    struct nx_shape_slot *nx_last;  /* the last one found or filled (tried first), or NULL */
    /* This event's small allocations (values, texts, paths) are bumped from one block of the
     * arena (norm_alloc), whose unused tail normalize_event gives back: one arena call per
     * event instead of one per allocation. Emptied per event (the caller may reset the arena
     * between events). */
    char *pool;
    size_t pool_left;
    char *pool_block;
    size_t pool_block_bytes;
    clock_rfc3339_memo time_memo; /* the event time's parse and format (handle_time) */
    /* mamori.received text of the last stamp: a batch shares one received time */
    int64_t received_us_cached;
    char received_text[28];
};

/* ---- small helpers ------------------------------------------------------------------- */

static inline bool key_is(const char *key, size_t len, const char *lit, size_t lit_len)
{
    return len == lit_len && memcmp(key, lit, lit_len) == 0;
}
#define KEY_IS(key, len, lit) key_is((key), (len), lit, sizeof lit - 1)

static inline unsigned char ascii_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

void *norm_pool_refill(normalizer *n, size_t need);
/* The unused tail of this event's block back to the arena (when nothing was allocated from
 * the arena after it); the next norm_alloc takes a new block. */
void norm_pool_trim(normalizer *n);

/* 8-byte aligned memory from the arena, by way of this event's block. */
static inline void *norm_alloc(normalizer *n, size_t bytes)
{
    size_t need = (bytes + 7) & ~(size_t)7;
    if (MAMORI_UNLIKELY(need > n->pool_left)) return norm_pool_refill(n, need);
    void *p = n->pool;
    n->pool += need;
    n->pool_left -= need;
    return p;
}

static inline char *norm_strndup(normalizer *n, const char *s, size_t len)
{
    char *p = norm_alloc(n, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* The values the normalizer makes (converted System fields, stamps, lists). */
static inline json_value *new_value(normalizer *n, enum json_type type)
{
    json_value *v = norm_alloc(n, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)type;
    return v;
}

static inline const json_value *new_string(normalizer *n, const char *s, size_t len)
{
    json_value *v = new_value(n, JSON_STRING);
    v->str = s;
    v->len = (uint32_t)len;
    return v;
}

/* ---- path bytes as words: entry keys (normalize.c) and the JSON writer (normalize_write.c) */

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "rank_word byte-swaps little-endian loads");

/* The bytes of s[0..len) (len <= 8) as a little-endian word padded with `pad` bytes,
 * assembled in registers: a memcpy to a stack buffer and a wide load would stall on
 * store forwarding. */
static inline uint64_t load_partial(const char *s, size_t len, uint64_t pad)
{
    uint64_t w;
    if (len >= 8) {
        memcpy(&w, s, 8);
        return w;
    }
    if (len == 0) return pad;
    if (len >= 4) { /* two overlapping 4-byte loads */
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + len - 4, 4);
        w = (uint64_t)lo | (uint64_t)hi << (8 * (len - 4));
    } else { /* 1..3 bytes: first, middle, last */
        w = (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[len / 2] << (8 * (len / 2)) |
            (uint64_t)(unsigned char)s[len - 1] << (8 * (len - 1));
    }
    return w | (pad & ~((UINT64_C(1) << (8 * len)) - 1));
}

/* 8 path bytes from off as a big-endian key with '.' bytes zeroed. Zeroing keeps the key
 * order consistent with rank_of (a smaller key means a smaller path); equal keys — also
 * for '\0' vs '.' and for the zero padding of short paths — fall back to entry_cmp's
 * byte loop (rank_of and entry_cmp are in normalize_write.c). */
static inline __attribute__((always_inline)) uint64_t rank_word(const char *p, size_t len, size_t off)
{
    uint64_t x = off < len ? load_partial(p + off, len - off, 0) : 0;
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t t = x ^ 0x2e2e2e2e2e2e2e2eULL;             /* zero where the byte is '.' */
    uint64_t dots = ~(((t & low7) + low7) | t | low7); /* high bit of each '.' byte, exactly */
    x &= ~((dots >> 7) * 0xff);
    return __builtin_bswap64(x);
}

/* a[0..len) == b[0..len), inline: the keys and paths compared per field are short and most
 * pairs differ in their first word, where a call to memcmp costs more than the compare. */
static inline bool bytes_eq(const char *a, const char *b, size_t len)
{
    uint64_t x, y;
    if (len < 8) return load_partial(a, len, 0) == load_partial(b, len, 0);
    size_t i = 0;
    for (; i + 8 < len; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) return false;
    }
    memcpy(&x, a + len - 8, 8); /* the last word, overlapping the previous one */
    memcpy(&y, b + len - 8, 8);
    return x == y;
}

/* ---- shared between normalize.c, normalize_winlog.c and normalize_write.c ------------- */

/* normalize.c: rejections, value conversions, entries, ECS flattening. */
int norm_reject(normalizer *n, const char *reason, const char *path, size_t len) MAMORI_WUR;
bool norm_value_int(const json_value *v, int64_t *out);
const json_value *norm_as_text_slow(normalizer *n, const json_value *v);
/* winlog values are text in every shape but evtx_dump's (numbers, booleans made text again);
 * text, the common case, inline. */
static inline const json_value *norm_as_text(normalizer *n, const json_value *v)
{
    return v->type == JSON_STRING ? v : norm_as_text_slow(n, v);
}
const json_value *norm_as_long(normalizer *n, const json_value *v);
const json_value *norm_as_long_text(normalizer *n, const json_value *v);
size_t norm_format_i64(int64_t v, char *out);
const json_value *norm_as_guid(normalizer *n, const json_value *v);
const json_value *norm_as_keywords(normalizer *n, const json_value *v);
void norm_entry_set_path(struct entry *e, const char *path, size_t len);

/* event_field.flags of a path: folds to a constant for a literal. */
static inline uint8_t norm_path_flags(const char *path, size_t len)
{
    return len >= 7 && memcmp(path, "mamori.", 7) == 0 ? EVENT_FIELD_SERVER : 0;
}

/* The text of an integer the normalizer made without one (rare: they keep their text). */
void norm_entry_format_int(normalizer *n, struct entry *e);

/* What every pushed entry starts with but its path and keys: the value, its field text and
 * type (event_field.text), the kind. src_name, src_len and prio are read only for KIND_MAPPED
 * entries, whose pusher sets them. The value is read into locals first: stores through e (byte
 * members alias anything) would make the compiler load it again. */
static inline void norm_entry_fill(normalizer *n, struct entry *e, const json_value *v, enum entry_kind kind)
{
    const uint8_t type = v->type, flags = v->flags;
    const char *str = v->str;
    const uint32_t len = v->len;
    const char *text = NULL;
    uint32_t text_len = 0;
    if ((type == JSON_STRING || type == JSON_NUMBER) && str) {
        text = str;
        text_len = len;
    } else if (type == JSON_BOOL) {
        text = v->num.b ? "true" : "false";
        text_len = v->num.b ? 4 : 5;
    }
    e->value = v;
    e->text = text;
    e->text_len = text_len;
    e->type = type;
    e->reserved = 0;
    e->kind = (uint8_t)kind;
    if (MAMORI_UNLIKELY(!text && type == JSON_NUMBER && (flags & JSON_FLAG_INT))) norm_entry_format_int(n, e);
}

/* The index of the entry the next push fills: the next free one, or past ENTRY_CAP the spare
 * entry, overwritten by each such push, with the event marked for rejection. */
static inline uint32_t norm_claim_entry(normalizer *n)
{
    uint32_t index = n->entry_count;
    if (MAMORI_UNLIKELY(index >= ENTRY_CAP)) {
        n->entries_full = true;
        return ENTRY_CAP;
    }
    n->entry_count = index + 1;
    return index;
}

struct entry *norm_push_entry(normalizer *n, const char *path, size_t len, const json_value *v, enum entry_kind kind);

/* norm_push_entry with the keys, hash and flags norm_entry_set_path would compute, computed by
 * the caller (constants for literal paths). */
static inline struct entry *norm_push_keyed(normalizer *n, const char *path, size_t len, uint64_t key0, uint64_t key1,
                                            uint32_t path_hash, bool in_event_data, uint8_t flags, const json_value *v,
                                            enum entry_kind kind)
{
    const uint32_t index = norm_claim_entry(n);
    n->paths_shape = (n->paths_shape + path_hash) * NORM_SHAPE_MUL;
    struct entry *e = &n->entries[index];
#ifndef NDEBUG
    norm_entry_set_path(e, path, len);
    MAMORI_ASSERT(e->key0 == key0 && e->key1 == key1 && e->in_event_data == in_event_data && e->path_hash == path_hash &&
                  e->flags == flags);
#endif
    e->sort_pos = (uint8_t)index;
    e->path = path;
    e->path_len = (uint32_t)len;
    e->key0 = key0;
    e->key1 = key1;
    e->in_event_data = in_event_data;
    e->path_hash = path_hash;
    e->flags = flags;
    norm_entry_fill(n, e, v, kind);
    return e;
}
int norm_flatten_member(normalizer *n, const json_member *m, size_t prefix_len) MAMORI_WUR;

/* A literal path's keys fold to constants here (lit is never under EVENT_DATA_PREFIX;
 * checked in debug builds). */
#define PUSH_LIT(n, lit, v, kind) \
    norm_push_keyed((n), lit, sizeof lit - 1, rank_word(lit, sizeof lit - 1, 0), rank_word(lit, sizeof lit - 1, 8), \
                    event_path_hash(lit, sizeof lit - 1), false, norm_path_flags(lit, sizeof lit - 1), (v), (kind))

/* normalize_winlog.c: the three winlog shapes into System fields and EventData, then entries. */
int norm_winlogbeat_leaf(normalizer *n, size_t len, const json_value *v) MAMORI_WUR;
int norm_collect_evtx(normalizer *n, const json_value *raw, const json_value *event) MAMORI_WUR;
/* The NXLog shape slot whose keys are raw's (checked byte for byte), or NULL; sets n->nx_shape.
 * Only looks: norm_collect_nxlog fills a slot on a miss. */
struct nx_shape_slot *norm_nx_shape_lookup(normalizer *n, const json_value *raw);
/* n->nx_shape: norm_nx_shape_lookup's answer for raw, or NULL when it has not looked (or missed). */
int norm_collect_nxlog(normalizer *n, const json_value *raw) MAMORI_WUR;
/* detect_shape's facts about one top-level key (normalize.c; the NXLog shape cache keeps them) */
enum shape_key_bits {
    SHAPE_KEY_EVENT = 1u,    /* "Event": an evtx_dump document if its value holds System */
    SHAPE_KEY_WINLOG = 2u,   /* "winlog": Winlogbeat if its value holds event_data or channel */
    SHAPE_KEY_EVENT_ID = 4u, /* "EventID" */
    SHAPE_KEY_CHANNEL = 8u,  /* "Channel" or "SourceName" */
    SHAPE_KEY_WINLOGBEAT = 16u, /* "winlog.channel", "winlog.event_data[.…]" */
};
unsigned norm_shape_key_bits(const char *key, size_t len);
int norm_winlog_finish(normalizer *n) MAMORI_WUR;

/* normalize_write.c: sort, settle duplicates and conflicts, write the canonical JSON. */
void norm_sort_entries(normalizer *n, uint32_t count);
/* The sort cache's key for n->order[0..count): a hash of the paths in that order (their
 * event_path_hash folded as the pushes fold them into n->paths_shape, plus the count); also
 * sets each entry's sort_pos. */
uint64_t norm_order_shape(normalizer *n, uint32_t count);
/* norm_sort_entries through the sort cache, shape from norm_order_shape (sort_pos set);
 * pushed: the order given is n->entries[0..count) as pushed (n->paths_shape + count, sort_pos
 * set by the pushes; n->order is written here). Sets *no_equal
 * when the sorted order holds no two equal paths (norm_settle would keep every entry; false
 * when unknown). */
void norm_sort_cached(normalizer *n, uint32_t count, uint64_t shape, bool pushed, bool *no_equal);
int norm_settle(normalizer *n, uint32_t *count, bool *again) MAMORI_WUR;
void norm_write_json(normalizer *n, struct entry *const *v, uint32_t count);
void norm_sort_bytewise(struct entry **v, struct entry **tmp, uint32_t count);

#endif
