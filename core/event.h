/* core/event.h — the normalized event: ECS inside, whatever the agent sent outside.
 *
 * Ingest (and `mamorictl scan`, and the Kafka consumer) turn one parsed JSON object into
 * a mamori_event: a flat, path-sorted list of ECS fields plus the canonical JSON that the
 * store keeps. Formats: `ecs` (native), `winlog` (evtx_dump Event.System/EventData, NXLog
 * flat, Winlogbeat winlog.event_data — all three give the same event), `auto`.
 * The Sysmon/Windows → ECS field mapping is data: core/ecs_map.c (see docs/ecs-mapping.md). */
#ifndef MAMORI_CORE_EVENT_H
#define MAMORI_CORE_EVENT_H

#include "arena.h"
#include "base.h"
#include "buf.h"
#include "json.h"

#include <string.h>

enum event_format { EVENT_FORMAT_ECS = 0, EVENT_FORMAT_WINLOG = 1, EVENT_FORMAT_AUTO = 2 };

/* Parses "ecs", "winlog", "auto". */
int event_format_parse(const char *name, enum event_format *out) MAMORI_WUR;
const char *event_format_name(enum event_format f);

#define EVENT_MAX_FIELDS 1024    /* flattened fields per event, the server's mamori.* included */
#define EVENT_MAX_PATH_BYTES 256 /* bytes of one dotted field path */
#define EVENT_ID_HEX_CHARS 56    /* mamori.event_id: hex of ts(8) agent(8) seq(8) index(4) */

/* event_field.flags */
enum event_field_flag {
    EVENT_FIELD_SERVER = 1u << 0, /* the path starts with "mamori.": the server's stamps */
};

typedef struct event_field {
    const char *path; /* ECS dotted path, NUL-terminated */
    uint32_t path_len;
    /* event_path_hash(path, path_len); 0 when not computed (an event built by hand): then
     * text and flags are not set either and readers fall back to path and value. */
    uint32_t path_hash;
    const json_value *value; /* scalar, array of scalars, or (for arrays of objects) the array */
    /* The value's text, copied out of it so that a reader walking every field (detection)
     * does not load each value: a string's bytes or a number's text as sent (value->str,
     * value->len), the decimal of an integer without text (the normalizer's own, e.g. a
     * pid), "true"/"false" for a boolean; NULL for null, arrays, objects. Borrowed like value. */
    const char *text;
    uint32_t text_len;
    uint8_t type;  /* value->type (enum json_type), valid when path_hash is set */
    uint8_t flags; /* enum event_field_flag, valid when path_hash is set */
    uint16_t reserved;
} event_field;

/* A cheap hash of a field path (never 0): its last 8 bytes and its length. For tables of
 * paths probed once per field of every event (detection); a hit is verified in full. */
static inline uint32_t event_path_hash(const char *path, size_t len)
{
    uint64_t w = 0;
    if (len >= 8) {
        memcpy(&w, path + len - 8, 8);
    } else {
        for (size_t i = 0; i < len; i++) w |= (uint64_t)(uint8_t)path[i] << (8 * i);
    }
    uint64_t h = (w ^ ((uint64_t)len << 56) ^ (w >> 29)) * 0x9E3779B97F4A7C15ull;
    uint32_t r = (uint32_t)(h >> 32);
    return r ? r : 1;
}

/* The order of field paths (bytewise, a prefix first): memcmp's, inline and 8 bytes at a
 * time, since paths are short and detection compares them for every event it classifies. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "event_path_cmp reads 8 bytes as a little-endian word");
static inline int event_path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
    }
    for (; i < n; i++)
        if (a[i] != b[i]) return (uint8_t)a[i] < (uint8_t)b[i] ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

typedef struct mamori_event {
    int64_t ts_us;        /* event time used for ordering and storage keys (see normalize_event) */
    uint32_t index;       /* position in its batch */
    uint32_t field_count; /* fields sorted by path (bytewise), each path unique */
    event_field *fields;
    const char *json; /* canonical ECS JSON: nested objects, members sorted, compact */
    uint32_t json_len;
} mamori_event;

/* Looks a field up by exact ECS path (binary search). Borrowed; NULL if absent. */
const json_value *event_get(const mamori_event *ev, const char *path, size_t path_len);
static inline const json_value *event_get_cstr(const mamori_event *ev, const char *path)
{
    size_t n = 0;
    while (path[n]) n++;
    return event_get(ev, path, n);
}

/* Server-side facts stamped into every event as mamori.* fields. */
typedef struct event_stamp {
    const char *tenant;   /* mamori.tenant */
    const char *agent_id; /* mamori.agent_id; also host.id when the event has none */
    uint64_t agent_hash;  /* mamori_hash64 of tenant '\0' agent_id: part of mamori.event_id */
    uint64_t seq;         /* batch sequence number */
    int64_t received_us;  /* mamori.received */
    /* Event times outside [received - max_past_us, received + max_future_us] (or
     * missing/unparseable) are not trusted for ordering: ts_us becomes received_us.
     * @timestamp is re-formatted canonically when parseable and kept as sent only when
     * it is not. 0 disables the bound on that side. */
    int64_t max_past_us;
    int64_t max_future_us;
} event_stamp;

typedef struct normalizer normalizer;

/* One per thread: holds scratch space reused across events. */
normalizer *normalizer_create(void);
void normalizer_destroy(normalizer *n);

/* Normalizes one parsed JSON value into *out. Borrows `raw` and everything it points to
 * (they must live as long as `a`); all output memory comes from `a`.
 * The event must be a JSON object. Rejections (-EINVAL) write a short reason to err
 * (e.g. "duplicate field 'process.name'", "event is not an object", "too many fields"):
 * the caller counts the event as rejected and goes on with the next one. */
int normalize_event(normalizer *n, arena *a, enum event_format format, const json_value *raw,
                    const event_stamp *stamp, uint32_t index, mamori_event *out, char *err,
                    size_t err_len) MAMORI_WUR;

/* With defer set, later normalize_event calls leave out->json NULL (json_len 0) and skip
 * writing it: for a consumer that needs the canonical JSON of a few events only (`mamorictl
 * scan`: the ones that raise an alert). normalize_event_json then writes it for one event —
 * the same bytes normalize_event would have written — into `a` (which must still hold the
 * event). -EINVAL (reason in err) when it is too large, as normalize_event rejects it. */
void normalizer_set_defer_json(normalizer *n, bool defer);
int normalize_event_json(normalizer *n, arena *a, mamori_event *ev, char *err, size_t err_len) MAMORI_WUR;

/* mamori.event_id <-> its parts. The id is the event's storage address without the tenant:
 * lowercase hex of ts_us (u64), agent hash (u64), seq (u64), index (u32), big-endian. */
void event_id_format(int64_t ts_us, uint64_t agent_hash, uint64_t seq, uint32_t index,
                     char out[EVENT_ID_HEX_CHARS + 1]);
int event_id_parse(const char *s, size_t len, int64_t *ts_us, uint64_t *agent_hash, uint64_t *seq,
                   uint32_t *index) MAMORI_WUR;

/* Hash identifying an agent inside its tenant (storage keys, event ids, bus keys). */
uint64_t event_agent_hash(const char *tenant, const char *agent_id);
/* Hash identifying a tenant (storage key prefix). */
uint64_t event_tenant_hash(const char *tenant);

#endif
