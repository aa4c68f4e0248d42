/* core/normalize.c — one parsed JSON event in, one mamori_event out (contract in
 * core/event.h, rules in docs/ecs-mapping.md). Every shape first becomes a list of
 * (path, value, kind) entries in per-thread scratch: ECS input is flattened; the three
 * winlog shapes (evtx_dump, NXLog flat, Winlogbeat) are split into System fields and
 * EventData, and EventData goes through core/ecs_map. Then one sort, one pass that settles
 * paths claimed twice, and one walk that writes the canonical JSON. No malloc per event:
 * output comes from the caller's arena, scratch lives in the normalizer. */
#include "clock.h"
#include "ecs_map.h"
#include "event.h"
#include "logsource.h"

#include <errno.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room beyond the input's own fields for what the normalizer adds (system fields,
 * stamps, enrichment); the final event is still held to EVENT_MAX_FIELDS. */
#define ENTRY_CAP (EVENT_MAX_FIELDS + 128)
#define EVENT_DATA_PREFIX "winlog.event_data."
#define EVENT_DATA_PREFIX_LEN (sizeof EVENT_DATA_PREFIX - 1)
#define RESOLVE_ROUNDS_MAX 4
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
    uint64_t key0, key1; /* first 16 path bytes in sort order, for fast comparisons */
    const char *path;    /* NUL-terminated; arena or static */
    const json_value *value;
    const char *src_name; /* KIND_MAPPED: the EventData name it came from */
    uint32_t path_len;
    uint32_t src_len;
    uint32_t prio; /* KIND_MAPPED: row index * 2 + (1 if matched only caselessly) */
    uint8_t kind;
};

struct event_data {
    const char *name; /* sanitized: no spaces; '.' only between nested levels */
    uint32_t name_len;
    const json_value *value;
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

struct normalizer {
    struct entry entries[ENTRY_CAP];
    struct entry *order[ENTRY_CAP];
    struct entry *scratch[ENTRY_CAP];
    struct sort_key sort_keys[ENTRY_CAP];
    struct sort_key sort_tmp[ENTRY_CAP];
    struct event_data event_data[EVENT_MAX_FIELDS];
    uint32_t entry_count;
    uint32_t event_data_count;
    buf out;
    char path[EVENT_MAX_PATH_BYTES + 1];
    /* per event */
    arena *arena;
    char *err;
    size_t err_len;
    const json_value *timestamp; /* the input's @timestamp */
    bool low_bytes;              /* a path byte sorts below '.': bytewise order differs */
    bool winlogbeat;             /* flatten diverts winlog.* System and EventData paths */
    const json_value *ws[WS_COUNT];
    /* mamori.received text of the last stamp: a batch shares one received time */
    int64_t received_us_cached;
    char received_text[28];
};

normalizer *normalizer_create(void)
{
    normalizer *n = mamori_xcalloc(1, sizeof *n);
    buf_init(&n->out);
    buf_reserve(&n->out, 4096);
    return n;
}

void normalizer_destroy(normalizer *n)
{
    if (!n) return;
    buf_fini(&n->out);
    free(n);
}

/* ---- small helpers ------------------------------------------------------------------- */

static int reject(normalizer *n, const char *reason, const char *path, size_t len)
{
    if (!n->err || n->err_len == 0) return -EINVAL;
    if (!path) {
        snprintf(n->err, n->err_len, "%s", reason);
        return -EINVAL;
    }
    char shown[72];
    size_t k = 0;
    for (size_t i = 0; i < len && k < sizeof shown - 4; i++) {
        unsigned char c = (unsigned char)path[i];
        shown[k++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    if (k < len) {
        memcpy(shown + k, "...", 3);
        k += 3;
    }
    shown[k] = '\0';
    snprintf(n->err, n->err_len, "%s '%s'", reason, shown);
    return -EINVAL;
}

static inline bool key_is(const char *key, size_t len, const char *lit, size_t lit_len)
{
    return len == lit_len && memcmp(key, lit, lit_len) == 0;
}
#define KEY_IS(key, len, lit) key_is((key), (len), lit, sizeof lit - 1)

static inline unsigned char ascii_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

static json_value *new_value(normalizer *n, enum json_type type)
{
    json_value *v = arena_alloc(n->arena, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)type;
    return v;
}

static const json_value *new_string(normalizer *n, const char *s, size_t len)
{
    json_value *v = new_value(n, JSON_STRING);
    v->str = s;
    v->len = (uint32_t)len;
    return v;
}

static const json_value *new_int(normalizer *n, int64_t i)
{
    json_value *v = new_value(n, JSON_NUMBER);
    v->flags = JSON_FLAG_INT; /* str stays NULL: writers print num.i */
    v->num.i = i;
    return v;
}

/* Canonical decimal only ("0", "-12", no '+', no leading zeros) so text ↔ integer is 1:1. */
static bool parse_decimal(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i >= len || len - i > 19) return false;
    if (s[i] == '0' && (len - i > 1 || neg)) return false;
    uint64_t mag = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        mag = mag * 10 + (uint64_t)(s[i] - '0');
    }
    if (mag > (uint64_t)INT64_MAX) return false;
    *out = neg ? -(int64_t)mag : (int64_t)mag;
    return true;
}

/* An integer from a JSON integer or canonical decimal text. */
static bool value_int(const json_value *v, int64_t *out)
{
    if (!v) return false;
    if (v->type == JSON_NUMBER && (v->flags & JSON_FLAG_INT)) {
        *out = v->num.i;
        return true;
    }
    return v->type == JSON_STRING && parse_decimal(v->str, v->len, out);
}

/* winlog values are text in every shape but evtx_dump, which types numbers and booleans:
 * make them text again so the shapes agree (mapped LONG fields become integers later). */
static const json_value *as_text(normalizer *n, const json_value *v)
{
    if (v->type == JSON_NUMBER && v->str) return new_string(n, v->str, v->len);
    if (v->type == JSON_BOOL) return v->num.b ? new_string(n, "true", 4) : new_string(n, "false", 5);
    return v;
}

static const json_value *as_long(normalizer *n, const json_value *v)
{
    int64_t i;
    if (v->type == JSON_STRING && parse_decimal(v->str, v->len, &i)) return new_int(n, i);
    return v;
}

/* Decimal text of v into out (>= 21 bytes); returns the length. */
static size_t format_i64(int64_t v, char *out)
{
    char tmp[24];
    size_t k = 0;
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[k++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    size_t len = 0;
    if (v < 0) out[len++] = '-';
    while (k) out[len++] = tmp[--k];
    out[len] = '\0';
    return len;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}" / "5770385f-…" → "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}". */
static const json_value *as_guid(normalizer *n, const json_value *v)
{
    if (!v || v->type != JSON_STRING) return v;
    const char *s = v->str;
    size_t len = v->len;
    if (len == 38 && s[0] == '{' && s[37] == '}') {
        s++;
        len = 36;
    }
    if (len != 36) return v;
    bool canonical = v->len == 38;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return v;
        } else if (hex_digit(s[i]) < 0) {
            return v;
        } else if (s[i] >= 'A' && s[i] <= 'F') {
            canonical = false;
        }
    }
    if (canonical) return v;
    char *o = arena_alloc(n->arena, 38);
    o[0] = '{';
    for (size_t i = 0; i < 36; i++) o[i + 1] = (char)ascii_lower((unsigned char)s[i]);
    o[37] = '}';
    return new_string(n, o, 38);
}

/* Keywords: an integer (NXLog prints the mask signed) or hex text → "0x…" lowercase. */
static const json_value *as_keywords(normalizer *n, const json_value *v)
{
    uint64_t mask = 0;
    if (v->type == JSON_NUMBER && (v->flags & JSON_FLAG_INT)) {
        mask = (uint64_t)v->num.i;
    } else if (v->type == JSON_STRING && v->len > 2 && v->len <= 18 && v->str[0] == '0' &&
               (v->str[1] == 'x' || v->str[1] == 'X')) {
        for (uint32_t i = 2; i < v->len; i++) {
            int d = hex_digit(v->str[i]);
            if (d < 0) return v;
            mask = mask << 4 | (uint64_t)d;
        }
    } else {
        return v;
    }
    static const char hex[] = "0123456789abcdef";
    char *o = arena_alloc(n->arena, 20);
    size_t digits = 1;
    while (digits < 16 && (mask >> (4 * digits))) digits++;
    o[0] = '0';
    o[1] = 'x';
    for (size_t i = 0; i < digits; i++) o[2 + i] = hex[(mask >> (4 * (digits - 1 - i))) & 15];
    o[2 + digits] = '\0';
    return new_string(n, o, 2 + digits);
}

/* ---- entries --------------------------------------------------------------------------- */

/* Sort order: bytewise, except that '.' sorts before every other byte. Then all paths
 * under "a." follow "a" directly, so duplicates and leaf/prefix conflicts are neighbours,
 * and the nested JSON comes out with each object's keys in bytewise order. */
static inline unsigned rank_of(unsigned char c) { return c == '.' ? 0u : c < '.' ? c + 1u : c; }

/* 8 path bytes from off as a big-endian key with '.' bytes zeroed. Zeroing keeps the key
 * order consistent with rank_of (a smaller key means a smaller path); equal keys — also
 * for '\0' vs '.' and for the zero padding of short paths — fall back to entry_cmp's
 * byte loop. */
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

static inline uint64_t rank_word(const char *p, size_t len, size_t off)
{
    uint64_t x = off < len ? load_partial(p + off, len - off, 0) : 0;
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t t = x ^ 0x2e2e2e2e2e2e2e2eULL;             /* zero where the byte is '.' */
    uint64_t dots = ~(((t & low7) + low7) | t | low7); /* high bit of each '.' byte, exactly */
    x &= ~((dots >> 7) * 0xff);
    return __builtin_bswap64(x);
}

static int entry_cmp(const struct entry *a, const struct entry *b)
{
    if (a->key0 != b->key0) return a->key0 < b->key0 ? -1 : 1;
    if (a->key1 != b->key1) return a->key1 < b->key1 ? -1 : 1;
    /* The first differing byte decides, ranked; equal up to the shorter: shorter first. */
    size_t n = MAMORI_MIN(a->path_len, b->path_len), i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a->path + i, 8);
        memcpy(&y, b->path + i, 8);
        if (x != y) {
            i += (size_t)__builtin_ctzll(x ^ y) / 8;
            break;
        }
    }
    while (i < n && a->path[i] == b->path[i]) i++;
    if (i < n) return rank_of((unsigned char)a->path[i]) < rank_of((unsigned char)b->path[i]) ? -1 : 1;
    return a->path_len < b->path_len ? -1 : a->path_len > b->path_len;
}

static inline bool same_path(const struct entry *a, const struct entry *b)
{
    return a->path_len == b->path_len && a->key0 == b->key0 && memcmp(a->path, b->path, a->path_len) == 0;
}

static void entry_set_path(struct entry *e, const char *path, size_t len)
{
    e->path = path;
    e->path_len = (uint32_t)len;
    e->key0 = rank_word(path, len, 0);
    e->key1 = rank_word(path, len, 8);
}

static struct entry *push_entry(normalizer *n, const char *path, size_t len, const json_value *v, enum entry_kind kind)
{
    MAMORI_ASSERT(n->entry_count < ENTRY_CAP);
    struct entry *e = &n->entries[n->entry_count++];
    entry_set_path(e, path, len);
    e->value = v;
    e->src_name = NULL;
    e->src_len = 0;
    e->prio = 0;
    e->kind = (uint8_t)kind;
    return e;
}

static inline struct entry *push_static(normalizer *n, const char *path, const json_value *v, enum entry_kind kind)
{
    return push_entry(n, path, strlen(path), v, kind);
}
#define PUSH_LIT(n, lit, v, kind) push_entry((n), lit, sizeof lit - 1, (v), (kind))

static bool has_low_bytes(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < '.') return true;
    return false;
}

/* ---- ECS input: flatten nested objects into dotted paths -------------------------------- */

static int winlogbeat_leaf(normalizer *n, size_t len, const json_value *v);

static int add_leaf(normalizer *n, size_t len, const json_value *v)
{
    const char *p = n->path;
    /* The server owns mamori.*: whatever an agent sent there is dropped, never trusted. */
    if (len >= 6 && memcmp(p, "mamori", 6) == 0 && (len == 6 || p[6] == '.')) return 0;
    if (KEY_IS(p, len, "@timestamp")) {
        if (n->timestamp) return reject(n, "duplicate field", p, len);
        n->timestamp = v;
        return 0;
    }
    if (n->winlogbeat && len > 7 && memcmp(p, "winlog.", 7) == 0) {
        int rc = winlogbeat_leaf(n, len, v);
        if (rc) return rc < 0 ? rc : 0;
    }
    if (n->entry_count + n->event_data_count >= EVENT_MAX_FIELDS) return reject(n, "too many fields", NULL, 0);
    if (v->type == JSON_STRING && v->len && ((v->str[0] >= '0' && v->str[0] <= '9') || v->str[0] == '-') &&
        ecs_map_path_type(p, len) == ECS_TYPE_LONG)
        v = as_long(n, v);
    push_entry(n, arena_strndup(n->arena, p, len), len, v, KIND_INPUT);
    return 0;
}

static int flatten(normalizer *n, const json_value *obj, size_t prefix_len);

static int flatten_member(normalizer *n, const json_member *m, size_t prefix_len)
{
    /* Checked before writing anything: prefix_len may already be the maximum. */
    if (prefix_len + (prefix_len ? 1u : 0u) + m->key_len > EVENT_MAX_PATH_BYTES)
        return prefix_len ? reject(n, "field path too long", n->path, prefix_len)
                          : reject(n, "field path too long", m->key, m->key_len);
    size_t len = prefix_len;
    if (len) n->path[len++] = '.';
    /* Dots in keys are path separators; an empty segment names nothing. Most keys hold
     * no byte <= '.', which a word-at-a-time check shows. */
    const char *k = m->key;
    bool empty = m->key_len == 0;
    uint32_t j = 0;
    for (; j + 8 <= m->key_len; j += 8) {
        uint64_t w;
        memcpy(&w, k + j, 8);
        if ((w - 0x2f2f2f2f2f2f2f2fULL) & ~w & 0x8080808080808080ULL) break;
    }
    for (; j < m->key_len && !empty; j++) {
        unsigned char c = (unsigned char)k[j];
        if (c > '.') continue;
        if (c < '.') n->low_bytes = true;
        else empty = j == 0 || j + 1 == m->key_len || k[j + 1] == '.';
    }
    memcpy(n->path + len, k, m->key_len);
    len += m->key_len;
    if (empty) return reject(n, "empty field name in", n->path, len);
    if (m->value.type == JSON_OBJECT) return flatten(n, &m->value, len);
    return add_leaf(n, len, &m->value);
}

static int flatten(normalizer *n, const json_value *obj, size_t prefix_len)
{
    for (uint32_t i = 0; i < obj->len; i++) {
        int rc = flatten_member(n, &obj->members[i], prefix_len);
        if (rc) return rc;
    }
    return 0;
}

/* ---- winlog: EventData names and values ------------------------------------------------- */

/* EventData names become one path segment: spaces go ("Source Name" is Sigma's SourceName),
 * '.' becomes '_' (it would split the path), an empty name becomes "_". Returns a view
 * into `key` when nothing changes. */
static const char *sanitize_name(normalizer *n, const char *key, size_t len, uint32_t *out_len, bool keep_dots)
{
    bool change = len == 0;
    for (size_t i = 0; i < len && !change; i++) change = key[i] == ' ' || (key[i] == '.' && !keep_dots);
    if (has_low_bytes(key, len)) n->low_bytes = true;
    if (!change) {
        *out_len = (uint32_t)len;
        return key;
    }
    char *o = arena_alloc(n->arena, len + 2);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (key[i] == ' ') continue;
        o[k++] = (key[i] == '.' && !keep_dots) ? '_' : key[i];
    }
    if (k == 0) o[k++] = '_';
    o[k] = '\0';
    *out_len = (uint32_t)k;
    return o;
}

static int push_event_data(normalizer *n, const char *name, uint32_t name_len, const json_value *v)
{
    if (n->entry_count + n->event_data_count >= EVENT_MAX_FIELDS) return reject(n, "too many fields", NULL, 0);
    if (EVENT_DATA_PREFIX_LEN + name_len > EVENT_MAX_PATH_BYTES)
        return reject(n, "field path too long", name, name_len);
    struct event_data *d = &n->event_data[n->event_data_count++];
    d->name = name;
    d->name_len = name_len;
    d->value = v;
    return 0;
}

/* The "#text" of an evtx_dump element ({"#attributes":{…},"#text":4688}), or v itself. */
static const json_value *element_text(const json_value *v)
{
    if (!v || v->type != JSON_OBJECT) return v;
    return json_object_get(v, "#text", 5);
}

/* An XML attribute as converters spell it: {"#attributes":{"Name":…}}, {"@Name":…} or
 * {"Name":…}. */
static const json_value *element_attr(const json_value *v, const char *name, size_t len)
{
    if (!v || v->type != JSON_OBJECT) return NULL;
    const json_value *attrs = json_object_get(v, "#attributes", 11);
    const json_value *r = attrs ? json_object_get(attrs, name, len) : NULL;
    if (r) return r;
    for (uint32_t i = 0; i < v->len; i++) {
        const json_member *m = &v->members[i];
        if (m->key_len == len + 1 && m->key[0] == '@' && memcmp(m->key + 1, name, len) == 0) return &m->value;
    }
    return json_object_get(v, name, len);
}

/* One EventData element; nested objects (rare) keep their structure under the name. */
static int collect_event_data_value(normalizer *n, char *name, size_t name_len, const json_value *v, unsigned depth)
{
    if (v->type == JSON_OBJECT) {
        const json_value *text = json_object_get(v, "#text", 5);
        if (text) v = text;
    }
    if (v->type != JSON_OBJECT) {
        const char *stable = name_len == 0 ? "_" : arena_strndup(n->arena, name, name_len);
        return push_event_data(n, stable, (uint32_t)(name_len ? name_len : 1), v);
    }
    for (uint32_t i = 0; i < v->len; i++) {
        const json_member *m = &v->members[i];
        if (KEY_IS(m->key, m->key_len, "#attributes")) continue;
        uint32_t seg_len;
        const char *seg = sanitize_name(n, m->key, m->key_len, &seg_len, false);
        if (name_len + 1 + seg_len > EVENT_MAX_PATH_BYTES || depth > JSON_MAX_DEPTH)
            return reject(n, "field path too long", name, name_len);
        name[name_len] = '.';
        memcpy(name + name_len + 1, seg, seg_len);
        int rc = collect_event_data_value(n, name, name_len + 1 + seg_len, &m->value, depth + 1);
        if (rc) return rc;
    }
    return 0;
}

static int collect_event_data_member(normalizer *n, const char *key, size_t key_len, const json_value *v)
{
    uint32_t name_len;
    const char *name = sanitize_name(n, key, key_len, &name_len, false);
    if (v->type != JSON_OBJECT || json_object_get(v, "#text", 5)) {
        v = element_text(v);
        if (!v) v = new_value(n, JSON_NULL);
        return push_event_data(n, name, name_len, v);
    }
    char buffer[EVENT_MAX_PATH_BYTES + 1];
    if (name_len > EVENT_MAX_PATH_BYTES) return reject(n, "field path too long", name, name_len);
    memcpy(buffer, name, name_len);
    return collect_event_data_value(n, buffer, name_len, v, 0);
}

static int push_event_data_named(normalizer *n, const json_value *name, const json_value *value)
{
    uint32_t len;
    const char *s = sanitize_name(n, name->str, name->len, &len, false);
    return push_event_data(n, s, len, value ? value : new_value(n, JSON_NULL));
}

/* EventData / UserData of evtx_dump-like converters: {"Name": value, …}, or xmltodict's
 * {"Data": [{"@Name": "Image", "#text": "…"}, …]}. */
static int collect_event_data(normalizer *n, const json_value *data, bool user_data)
{
    if (!data || data->type != JSON_OBJECT) return 0;
    for (uint32_t i = 0; i < data->len; i++) {
        const json_member *m = &data->members[i];
        const json_value *v = &m->value;
        if (KEY_IS(m->key, m->key_len, "#attributes") || KEY_IS(m->key, m->key_len, "xmlns")) continue;
        int rc = 0;
        if (user_data && v->type == JSON_OBJECT && !json_object_get(v, "#text", 5)) {
            /* UserData holds one element named after the event, then the fields. */
            rc = collect_event_data(n, v, false);
        } else if (KEY_IS(m->key, m->key_len, "Data") && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) &&
                   (v->type == JSON_ARRAY ? (v->len && element_attr(&v->items[0], "Name", 4))
                                          : element_attr(v, "Name", 4) != NULL)) {
            uint32_t count = v->type == JSON_ARRAY ? v->len : 1;
            for (uint32_t k = 0; k < count && !rc; k++) {
                const json_value *item = v->type == JSON_ARRAY ? &v->items[k] : v;
                const json_value *name = element_attr(item, "Name", 4);
                if (!json_is_string(name)) continue;
                const json_value *value = item->type == JSON_OBJECT ? json_object_get(item, "#text", 5) : NULL;
                rc = push_event_data_named(n, name, value);
            }
        } else {
            rc = collect_event_data_member(n, m->key, m->key_len, v);
        }
        if (rc) return rc;
    }
    return 0;
}

/* ---- winlog shape 1: evtx_dump {"Event":{"System":{…},"EventData":{…}}} ---------------- */

static int collect_evtx(normalizer *n, const json_value *raw, const json_value *event)
{
    /* Anything beside "Event" is ECS the shipper added. */
    for (uint32_t i = 0; i < raw->len; i++) {
        const json_member *m = &raw->members[i];
        if (&m->value == event) continue;
        int rc = flatten_member(n, m, 0);
        if (rc) return rc;
    }
    const json_value **ws = n->ws;
    const json_value *sys = json_object_get(event, "System", 6);
    for (uint32_t i = 0; sys && sys->type == JSON_OBJECT && i < sys->len; i++) {
        const json_member *m = &sys->members[i];
        const char *k = m->key;
        size_t kl = m->key_len;
        const json_value *v = &m->value;
        if (KEY_IS(k, kl, "Provider")) {
            ws[WS_PROVIDER_NAME] = v->type == JSON_OBJECT ? element_attr(v, "Name", 4) : v;
            ws[WS_PROVIDER_GUID] = element_attr(v, "Guid", 4);
        } else if (KEY_IS(k, kl, "EventID")) {
            ws[WS_EVENT_ID] = element_text(v);
        } else if (KEY_IS(k, kl, "Version")) {
            ws[WS_VERSION] = element_text(v);
        } else if (KEY_IS(k, kl, "Level")) {
            ws[WS_LEVEL] = element_text(v);
        } else if (KEY_IS(k, kl, "Task")) {
            ws[WS_TASK] = element_text(v);
        } else if (KEY_IS(k, kl, "Opcode")) {
            ws[WS_OPCODE] = element_text(v);
        } else if (KEY_IS(k, kl, "Keywords")) {
            ws[WS_KEYWORDS] = element_text(v);
        } else if (KEY_IS(k, kl, "TimeCreated")) {
            ws[WS_TIME_CREATED] = v->type == JSON_OBJECT ? element_attr(v, "SystemTime", 10) : v;
        } else if (KEY_IS(k, kl, "EventRecordID")) {
            ws[WS_RECORD_ID] = element_text(v);
        } else if (KEY_IS(k, kl, "Correlation")) {
            ws[WS_ACTIVITY_ID] = element_attr(v, "ActivityID", 10);
            ws[WS_RELATED_ACTIVITY_ID] = element_attr(v, "RelatedActivityID", 17);
        } else if (KEY_IS(k, kl, "Execution")) {
            ws[WS_PID] = element_attr(v, "ProcessID", 9);
            ws[WS_TID] = element_attr(v, "ThreadID", 8);
        } else if (KEY_IS(k, kl, "Channel")) {
            ws[WS_CHANNEL] = element_text(v);
        } else if (KEY_IS(k, kl, "Computer")) {
            ws[WS_COMPUTER] = element_text(v);
        } else if (KEY_IS(k, kl, "Security")) {
            ws[WS_USER_ID] = element_attr(v, "UserID", 6);
        }
    }
    int rc = collect_event_data(n, json_object_get(event, "EventData", 9), false);
    if (!rc) rc = collect_event_data(n, json_object_get(event, "UserData", 8), true);
    if (rc) return rc;
    const json_value *rendering = json_object_get(event, "RenderingInfo", 13);
    if (rendering) ws[WS_MESSAGE] = element_text(json_object_get(rendering, "Message", 7));
    return 0;
}

/* ---- winlog shape 2: NXLog / flat (top-level EventID, Channel, SourceName, …) ---------- */

enum nx_action {
    NX_EVENT_DATA = 0, /* not in the table: an EventData field */
    NX_SLOT,           /* a System field: goes to ws[slot] */
    NX_DROP,           /* collector bookkeeping (NXLog, logstash): dropped */
    NX_NUMBER_SLOT,    /* System field when a JSON number, EventData when text */
    NX_ACCOUNT,        /* NXLog's resolved UserID: System only when UserID is there */
    NX_OPCODE_TEXT,    /* Opcode: text name dropped when OpcodeValue is there */
    NX_EVENT_TYPE,     /* NXLog's EventType (INFO, AUDIT_SUCCESS…) vs Sysmon's (SetValue…) */
    NX_EVENT_TYPE_ORIGINAL,
    NX_TIMESTAMP,
    NX_CONTAINER, /* EventData / UserData nested objects */
};

struct nx_key {
    const char *key;
    uint8_t action;
    uint8_t slot;
};

static const struct nx_key nx_keys[] = {
    {"EventID", NX_SLOT, WS_EVENT_ID},
    {"Channel", NX_SLOT, WS_CHANNEL},
    {"SourceName", NX_SLOT, WS_PROVIDER_NAME},
    {"ProviderGuid", NX_SLOT, WS_PROVIDER_GUID},
    {"Hostname", NX_SLOT, WS_COMPUTER},
    {"RecordNumber", NX_SLOT, WS_RECORD_ID},
    {"ExecutionProcessID", NX_SLOT, WS_PID},
    {"ExecutionThreadID", NX_SLOT, WS_TID},
    {"ProcessID", NX_NUMBER_SLOT, WS_PID},
    {"ThreadID", NX_NUMBER_SLOT, WS_TID},
    {"UserID", NX_SLOT, WS_USER_ID},
    {"AccountName", NX_ACCOUNT, WS_USER_NAME},
    {"Domain", NX_ACCOUNT, WS_USER_DOMAIN},
    {"AccountType", NX_ACCOUNT, WS_USER_TYPE},
    {"Version", NX_NUMBER_SLOT, WS_VERSION},
    {"Level", NX_SLOT, WS_LEVEL},
    {"Severity", NX_SLOT, WS_SEVERITY},
    {"Task", NX_SLOT, WS_TASK},
    {"OpcodeValue", NX_SLOT, WS_OPCODE},
    {"Opcode", NX_OPCODE_TEXT, WS_OPCODE},
    {"Keywords", NX_SLOT, WS_KEYWORDS},
    {"ActivityID", NX_SLOT, WS_ACTIVITY_ID},
    {"RelatedActivityID", NX_SLOT, WS_RELATED_ACTIVITY_ID},
    {"Message", NX_SLOT, WS_MESSAGE},
    {"EventTime", NX_SLOT, WS_EVENT_TIME},
    {"TimeCreated", NX_SLOT, WS_TIME_CREATED},
    {"@timestamp", NX_TIMESTAMP, 0},
    {"EventType", NX_EVENT_TYPE, 0},
    {"EventTypeOrignal", NX_EVENT_TYPE_ORIGINAL, 0}, /* sic: the OTRF logstash pipeline */
    {"EventTypeOriginal", NX_EVENT_TYPE_ORIGINAL, 0},
    {"SeverityValue", NX_DROP, 0},
    {"Category", NX_DROP, 0},
    {"EventReceivedTime", NX_DROP, 0},
    {"SourceModuleName", NX_DROP, 0},
    {"SourceModuleType", NX_DROP, 0},
    {"ERROR_EVT_UNRESOLVED", NX_DROP, 0},
    {"@version", NX_DROP, 0},
    {"host", NX_DROP, 0},
    {"port", NX_DROP, 0},
    {"tags", NX_DROP, 0},
    {"type", NX_DROP, 0},
    {"EventData", NX_CONTAINER, 0},
    {"UserData", NX_CONTAINER, 1},
};

/* Looked up for every top-level key of every NXLog event: a small hash built once. */
#define NX_SLOTS 128u
_Static_assert(MAMORI_ARRAY_LEN(nx_keys) * 2 < NX_SLOTS, "NXLog key index too full");
_Static_assert(MAMORI_ARRAY_LEN(nx_keys) <= 64, "collect_nxlog's deferred_seen is a uint64_t");
static uint8_t nx_slots[NX_SLOTS]; /* row + 1; 0 = empty */
static uint8_t nx_key_lens[MAMORI_ARRAY_LEN(nx_keys)];
static pthread_once_t nx_once = PTHREAD_ONCE_INIT;

static inline uint32_t nx_hash(const char *key, size_t len)
{
    return ((uint32_t)len * 31u + (unsigned char)key[0] * 7u + (unsigned char)key[len - 1] * 3u +
            (unsigned char)key[len / 2]) % NX_SLOTS;
}

static void nx_index_build(void)
{
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(nx_keys); i++) {
        size_t len = strlen(nx_keys[i].key);
        nx_key_lens[i] = (uint8_t)len;
        uint32_t slot = nx_hash(nx_keys[i].key, len);
        while (nx_slots[slot]) slot = (slot + 1) % NX_SLOTS;
        nx_slots[slot] = (uint8_t)(i + 1);
    }
}

static const struct nx_key *nx_find(const char *key, size_t len)
{
    uint32_t slot = nx_hash(key, len);
    while (nx_slots[slot]) {
        size_t i = nx_slots[slot] - 1u;
        if (nx_key_lens[i] == len && memcmp(nx_keys[i].key, key, len) == 0) return &nx_keys[i];
        slot = (slot + 1) % NX_SLOTS;
    }
    return NULL;
}

static bool is_nxlog_event_type(const json_value *v)
{
    static const char *const names[] = {"INFO", "AUDIT_SUCCESS", "AUDIT_FAILURE", "WARNING", "ERROR",
                                        "CRITICAL", "VERBOSE", "DEBUG"};
    if (!json_is_string(v)) return false;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(names); i++)
        if (strlen(names[i]) == v->len && memcmp(names[i], v->str, v->len) == 0) return true;
    return false;
}

static int collect_nxlog(normalizer *n, const json_value *raw)
{
    pthread_once(&nx_once, nx_index_build);
    const json_value **ws = n->ws;
    const json_member *deferred[MAMORI_ARRAY_LEN(nx_keys)];
    const struct nx_key *deferred_key[MAMORI_ARRAY_LEN(nx_keys)];
    size_t deferred_count = 0;
    uint64_t deferred_seen = 0; /* by nx_keys index */
    bool event_type_original = false;
    for (uint32_t i = 0; i < raw->len; i++) {
        const json_member *m = &raw->members[i];
        const json_value *v = &m->value;
        const struct nx_key *key = m->key_len ? nx_find(m->key, m->key_len) : NULL;
        int rc = 0;
        if (!key) {
            rc = collect_event_data_member(n, m->key, m->key_len, v);
        } else if (v->type == JSON_OBJECT && key->action != NX_CONTAINER) {
            rc = flatten_member(n, m, 0); /* not what NXLog writes there: keep it as ECS */
        } else {
            switch (key->action) {
            case NX_SLOT:
                if (ws[key->slot]) return reject(n, "duplicate field", m->key, m->key_len);
                ws[key->slot] = v;
                break;
            case NX_TIMESTAMP:
                if (n->timestamp) return reject(n, "duplicate field", m->key, m->key_len);
                n->timestamp = v;
                break;
            case NX_EVENT_TYPE_ORIGINAL:
                event_type_original = true;
                break;
            case NX_CONTAINER:
                rc = collect_event_data(n, v, key->slot == 1);
                break;
            case NX_DROP:
                break;
            default: {
                /* each key at most once, so the list below cannot overflow */
                uint64_t bit = (uint64_t)1 << (key - nx_keys);
                if (deferred_seen & bit) return reject(n, "duplicate field", m->key, m->key_len);
                deferred_seen |= bit;
                MAMORI_ASSERT(deferred_count < MAMORI_ARRAY_LEN(deferred));
                deferred[deferred_count] = m;
                deferred_key[deferred_count++] = key;
                break;
            }
            }
        }
        if (rc) return rc;
    }
    /* Keys whose meaning depends on their neighbours. */
    for (size_t i = 0; i < deferred_count; i++) {
        const json_member *m = deferred[i];
        const struct nx_key *key = deferred_key[i];
        const json_value *v = &m->value;
        bool system = false;
        switch (key->action) {
        case NX_NUMBER_SLOT: system = v->type == JSON_NUMBER && !ws[key->slot]; break;
        case NX_ACCOUNT: system = ws[WS_USER_ID] != NULL && !ws[key->slot]; break;
        case NX_OPCODE_TEXT:
            if (ws[WS_OPCODE]) continue;
            system = true;
            break;
        case NX_EVENT_TYPE:
            if (!event_type_original && is_nxlog_event_type(v)) continue;
            break;
        default: mamori_panic(__FILE__, __LINE__, "unexpected deferred NXLog key");
        }
        int rc = 0;
        if (system) ws[key->slot] = v;
        else rc = collect_event_data_member(n, m->key, m->key_len, v);
        if (rc) return rc;
    }
    return 0;
}

/* ---- winlog shape 3: Winlogbeat (winlog.event_data.*, winlog.channel, …) --------------- */

static const struct {
    const char *path;
    uint8_t slot;
} winlogbeat_paths[] = {
    {"winlog.channel", WS_CHANNEL},
    {"winlog.event_id", WS_EVENT_ID},
    {"winlog.provider_name", WS_PROVIDER_NAME},
    {"winlog.provider_guid", WS_PROVIDER_GUID},
    {"winlog.computer_name", WS_COMPUTER},
    {"winlog.record_id", WS_RECORD_ID},
    {"winlog.process.pid", WS_PID},
    {"winlog.process.thread.id", WS_TID},
    {"winlog.user.identifier", WS_USER_ID},
    {"winlog.user.name", WS_USER_NAME},
    {"winlog.user.domain", WS_USER_DOMAIN},
    {"winlog.user.type", WS_USER_TYPE},
    {"winlog.version", WS_VERSION},
    {"winlog.task", WS_TASK},
    {"winlog.opcode", WS_OPCODE},
    {"winlog.keywords", WS_KEYWORDS},
    {"winlog.activity_id", WS_ACTIVITY_ID},
    {"winlog.related_activity_id", WS_RELATED_ACTIVITY_ID},
};

/* Called by add_leaf for winlog.* paths: 1 = consumed, 0 = an ordinary field, <0 = error. */
static int winlogbeat_leaf(normalizer *n, size_t len, const json_value *v)
{
    const char *p = n->path;
    size_t prefix = 0;
    if (len > EVENT_DATA_PREFIX_LEN && memcmp(p, EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN) == 0)
        prefix = EVENT_DATA_PREFIX_LEN;
    else if (len > 17 && memcmp(p, "winlog.user_data.", 17) == 0)
        prefix = 17;
    if (prefix) {
        uint32_t name_len;
        const char *name = sanitize_name(n, p + prefix, len - prefix, &name_len, true);
        if (name == p + prefix) name = arena_strndup(n->arena, name, name_len); /* n->path is reused */
        int rc = push_event_data(n, name, name_len, v);
        return rc ? rc : 1;
    }
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(winlogbeat_paths); i++) {
        const char *path = winlogbeat_paths[i].path;
        if (strlen(path) != len || memcmp(path, p, len) != 0) continue;
        uint8_t slot = winlogbeat_paths[i].slot;
        if (n->ws[slot]) return reject(n, "duplicate field", p, len);
        n->ws[slot] = v;
        return 1;
    }
    return 0;
}

/* ---- winlog: System fields, EventData mapping, enrichment ------------------------------ */

static const char *level_name(const json_value *level, const json_value *severity)
{
    int64_t i;
    if (value_int(level, &i)) {
        switch (i) {
        case 0:
        case 4: return "information";
        case 1: return "critical";
        case 2: return "error";
        case 3: return "warning";
        case 5: return "verbose";
        default: return NULL;
        }
    }
    if (json_is_string(severity)) {
        static const char *const map[][2] = {{"INFO", "information"}, {"WARNING", "warning"}, {"ERROR", "error"},
                                             {"CRITICAL", "critical"}, {"DEBUG", "verbose"}};
        for (size_t k = 0; k < MAMORI_ARRAY_LEN(map); k++)
            if (strlen(map[k][0]) == severity->len && memcmp(map[k][0], severity->str, severity->len) == 0)
                return map[k][1];
    }
    return NULL;
}

static const json_value *string_list(normalizer *n, const char *const *items)
{
    uint32_t count = 0;
    while (count < 3 && items[count]) count++;
    json_value *v = new_value(n, JSON_ARRAY);
    v->len = count;
    v->items = arena_alloc(n->arena, count * sizeof(json_value));
    for (uint32_t i = 0; i < count; i++) {
        memset(&v->items[i], 0, sizeof(json_value));
        v->items[i].type = JSON_STRING;
        v->items[i].str = items[i];
        v->items[i].len = (uint32_t)strlen(items[i]);
    }
    return v;
}

static void push_system(normalizer *n, const char *path, size_t len, const json_value *v)
{
    if (v && v->type != JSON_OBJECT) push_entry(n, path, len, v, KIND_DERIVED);
}
#define PUSH_SYSTEM(n, lit, v) push_system((n), lit, sizeof lit - 1, (v))

static void emit_system(normalizer *n, const struct logsource_set *ls, const struct logsource_winlog_ecs *ecs,
                        bool have_event_id, int64_t event_id)
{
    const json_value **ws = n->ws;
    PUSH_SYSTEM(n, "winlog.channel", ws[WS_CHANNEL]);
    if (have_event_id) {
        char *text = arena_alloc(n->arena, 24);
        size_t len = format_i64(event_id, text);
        PUSH_LIT(n, "winlog.event_id", new_int(n, event_id), KIND_DERIVED);
        PUSH_LIT(n, "event.code", new_string(n, text, len), KIND_DERIVED);
    } else {
        PUSH_SYSTEM(n, "winlog.event_id", ws[WS_EVENT_ID]);
    }
    if (ws[WS_PROVIDER_NAME] && ws[WS_PROVIDER_NAME]->type != JSON_OBJECT) {
        PUSH_SYSTEM(n, "winlog.provider_name", ws[WS_PROVIDER_NAME]);
        PUSH_SYSTEM(n, "event.provider", ws[WS_PROVIDER_NAME]);
    }
    if (ws[WS_PROVIDER_GUID]) PUSH_SYSTEM(n, "winlog.provider_guid", as_guid(n, ws[WS_PROVIDER_GUID]));
    if (ws[WS_COMPUTER] && ws[WS_COMPUTER]->type != JSON_OBJECT) {
        PUSH_SYSTEM(n, "winlog.computer_name", ws[WS_COMPUTER]);
        PUSH_LIT(n, "host.name", ws[WS_COMPUTER], KIND_WEAK);
    }
    static const struct {
        uint8_t slot;
        const char *path;
    } longs[] = {{WS_RECORD_ID, "winlog.record_id"}, {WS_PID, "winlog.process.pid"},
                 {WS_TID, "winlog.process.thread.id"}, {WS_VERSION, "winlog.version"},
                 {WS_TASK, "winlog.task"}, {WS_OPCODE, "winlog.opcode"}};
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(longs); i++)
        if (ws[longs[i].slot])
            push_system(n, longs[i].path, strlen(longs[i].path), as_long(n, as_text(n, ws[longs[i].slot])));
    static const struct {
        uint8_t slot;
        const char *path;
    } texts[] = {{WS_USER_ID, "winlog.user.identifier"}, {WS_USER_NAME, "winlog.user.name"},
                 {WS_USER_DOMAIN, "winlog.user.domain"}, {WS_USER_TYPE, "winlog.user.type"},
                 {WS_MESSAGE, "message"}};
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(texts); i++)
        if (ws[texts[i].slot]) push_system(n, texts[i].path, strlen(texts[i].path), as_text(n, ws[texts[i].slot]));
    if (ws[WS_KEYWORDS]) PUSH_SYSTEM(n, "winlog.keywords", as_keywords(n, ws[WS_KEYWORDS]));
    if (ws[WS_ACTIVITY_ID]) PUSH_SYSTEM(n, "winlog.activity_id", as_guid(n, ws[WS_ACTIVITY_ID]));
    if (ws[WS_RELATED_ACTIVITY_ID])
        PUSH_SYSTEM(n, "winlog.related_activity_id", as_guid(n, ws[WS_RELATED_ACTIVITY_ID]));
    const char *level = level_name(ws[WS_LEVEL], ws[WS_SEVERITY]);
    if (level) PUSH_LIT(n, "log.level", new_string(n, level, strlen(level)), KIND_DERIVED);
    PUSH_LIT(n, "event.kind", new_string(n, "event", 5), KIND_DERIVED);
    if (ls->service) {
        const char *module = logsource_service_name((enum logsource_service)ls->service);
        PUSH_LIT(n, "event.module", new_string(n, module, strlen(module)), KIND_DERIVED);
    }
    if (ecs->category[0]) PUSH_LIT(n, "event.category", string_list(n, ecs->category), KIND_DERIVED);
    if (ecs->type[0]) PUSH_LIT(n, "event.type", string_list(n, ecs->type), KIND_DERIVED);
    const char *os = ls->product == LOGSOURCE_PRODUCT_LINUX ? "linux" : "windows";
    PUSH_LIT(n, "host.os.type", new_string(n, os, strlen(os)), KIND_WEAK);
}

static int map_event_data(normalizer *n, const struct logsource_set *ls)
{
    for (uint32_t i = 0; i < n->event_data_count; i++) {
        const struct event_data *d = &n->event_data[i];
        const json_value *v = as_text(n, d->value);
        if (KEY_IS(d->name, d->name_len, "UtcTime")) n->ws[WS_UTC_TIME] = v;
        else if (KEY_IS(d->name, d->name_len, "Hashes") || KEY_IS(d->name, d->name_len, "Hash")) n->ws[WS_HASHES] = v;
        bool exact = true;
        const ecs_map_entry *row = memchr(d->name, '.', d->name_len) ? NULL : ecs_map_lookup(d->name, d->name_len, ls, &exact);
        if (row) {
            if (row->type == ECS_TYPE_LONG) v = as_long(n, v);
            else if (row->type == ECS_TYPE_GUID) v = as_guid(n, v);
            struct entry *e = push_static(n, row->ecs_path, v, KIND_MAPPED);
            e->src_name = d->name;
            e->src_len = d->name_len;
            e->prio = (uint32_t)ecs_map_index(row) * 2u + (exact ? 0u : 1u);
            continue;
        }
        size_t len = EVENT_DATA_PREFIX_LEN + d->name_len;
        char *path = arena_alloc(n->arena, len + 1);
        memcpy(path, EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN);
        memcpy(path + EVENT_DATA_PREFIX_LEN, d->name, d->name_len);
        path[len] = '\0';
        push_entry(n, path, len, v, KIND_INPUT);
    }
    return 0;
}

/* Where Sysmon's Hashes go for the event's category: the process for process_creation,
 * the file for loads and file events; nowhere otherwise. */
static const char *hash_owner(const struct logsource_set *ls)
{
    if (logsource_has(ls, LOGSOURCE_CATEGORY_PROCESS_CREATION)) return "process";
    const uint64_t file_like =
        logsource_bit(LOGSOURCE_CATEGORY_IMAGE_LOAD) | logsource_bit(LOGSOURCE_CATEGORY_DRIVER_LOAD) |
        logsource_bit(LOGSOURCE_CATEGORY_FILE_EVENT) | logsource_bit(LOGSOURCE_CATEGORY_FILE_DELETE) |
        logsource_bit(LOGSOURCE_CATEGORY_FILE_DELETE_DETECTED) | logsource_bit(LOGSOURCE_CATEGORY_CREATE_STREAM_HASH) |
        logsource_bit(LOGSOURCE_CATEGORY_FILE_BLOCK_EXECUTABLE) | logsource_bit(LOGSOURCE_CATEGORY_FILE_BLOCK_SHREDDING) |
        logsource_bit(LOGSOURCE_CATEGORY_FILE_EXECUTABLE_DETECTED);
    return (ls->categories & file_like) ? "file" : NULL;
}

/* "SHA1=…,MD5=…,SHA256=…,IMPHASH=…" → <owner>.hash.sha1 … and <owner>.pe.imphash, lowercase. */
static void enrich_hashes(normalizer *n, const struct logsource_set *ls)
{
    static const char *const algos[][3] = {
        {"MD5", "process.hash.md5", "file.hash.md5"},          {"SHA1", "process.hash.sha1", "file.hash.sha1"},
        {"SHA256", "process.hash.sha256", "file.hash.sha256"}, {"SHA384", "process.hash.sha384", "file.hash.sha384"},
        {"SHA512", "process.hash.sha512", "file.hash.sha512"}, {"IMPHASH", "process.pe.imphash", "file.pe.imphash"},
    };
    const json_value *h = n->ws[WS_HASHES];
    const char *owner = hash_owner(ls);
    if (!owner || !json_is_string(h)) return;
    int column = owner[0] == 'p' ? 1 : 2;
    const char *s = h->str, *end = h->str + h->len;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        const char *eq = memchr(s, '=', (size_t)(item_end - s));
        if (eq && eq + 1 < item_end) {
            size_t alg_len = (size_t)(eq - s), value_len = (size_t)(item_end - eq - 1);
            for (size_t a = 0; a < MAMORI_ARRAY_LEN(algos); a++) {
                if (strlen(algos[a][0]) != alg_len || strncasecmp(algos[a][0], s, alg_len) != 0) continue;
                char *lower = arena_alloc(n->arena, value_len + 1);
                for (size_t k = 0; k < value_len; k++) lower[k] = (char)ascii_lower((unsigned char)eq[1 + k]);
                lower[value_len] = '\0';
                push_static(n, algos[a][column], new_string(n, lower, value_len), KIND_WEAK);
                break;
            }
        }
        s = item_end + 1;
    }
}

/* process.name / process.parent.name / file.name from the executable and file paths, as
 * Winlogbeat does: search and pivots use the names, Windows sends full paths. The source is
 * the value that will own the path after settle(): a shipper's own ECS field, else the
 * best mapped EventData field. */
static void enrich_names(normalizer *n)
{
    static const char *const pairs[][2] = {
        {"process.executable", "process.name"},
        {"process.parent.executable", "process.parent.name"},
        {"file.path", "file.name"},
    };
    const struct entry *best[MAMORI_ARRAY_LEN(pairs)] = {NULL};
    for (uint32_t i = 0; i < n->entry_count; i++) {
        const struct entry *e = &n->entries[i];
        if (e->kind != KIND_MAPPED && e->kind != KIND_INPUT) continue;
        for (size_t p = 0; p < MAMORI_ARRAY_LEN(pairs); p++) {
            if (strcmp(e->path, pairs[p][0]) != 0) continue;
            const struct entry *b = best[p];
            if (!b || (b->kind == KIND_MAPPED && (e->kind == KIND_INPUT || e->prio < b->prio))) best[p] = e;
        }
    }
    for (size_t p = 0; p < MAMORI_ARRAY_LEN(pairs); p++) {
        if (!best[p] || !json_is_string(best[p]->value)) continue;
        const json_value *v = best[p]->value;
        size_t start = v->len;
        while (start > 0 && v->str[start - 1] != '\\' && v->str[start - 1] != '/') start--;
        if (start == v->len) continue;
        push_static(n, pairs[p][1], new_string(n, v->str + start, v->len - start), KIND_WEAK);
    }
}

static int winlog_finish(normalizer *n)
{
    const json_value **ws = n->ws;
    int64_t event_id = -1;
    bool have_event_id = value_int(ws[WS_EVENT_ID], &event_id);
    const json_value *channel = ws[WS_CHANNEL];
    struct logsource_set ls;
    struct logsource_winlog_ecs ecs;
    logsource_from_winlog(json_is_string(channel) ? channel->str : NULL, json_is_string(channel) ? channel->len : 0,
                          have_event_id ? event_id : -1, &ls, &ecs);
    emit_system(n, &ls, &ecs, have_event_id, event_id);
    int rc = map_event_data(n, &ls);
    if (rc) return rc;
    enrich_names(n);
    enrich_hashes(n, &ls);
    return 0;
}

/* ---- time and stamps ---------------------------------------------------------------- */

static int64_t handle_time(normalizer *n, const event_stamp *stamp, bool winlog)
{
    const json_value *candidates[] = {n->timestamp, winlog ? n->ws[WS_TIME_CREATED] : NULL,
                                      winlog ? n->ws[WS_UTC_TIME] : NULL, winlog ? n->ws[WS_EVENT_TIME] : NULL};
    int64_t t = 0;
    bool parsed = false;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(candidates) && !parsed; i++) {
        const json_value *c = candidates[i];
        parsed = json_is_string(c) && clock_parse_rfc3339(c->str, c->len, &t) == 0;
    }
    int64_t received = stamp->received_us;
    if (!parsed) {
        if (n->timestamp) PUSH_LIT(n, "@timestamp", n->timestamp, KIND_INPUT);
        return received;
    }
    char *text = arena_alloc(n->arena, 28);
    size_t len = clock_format_rfc3339(t, text);
    PUSH_LIT(n, "@timestamp", new_string(n, text, len), KIND_DERIVED);
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    if (stamp->max_past_us > 0 && __builtin_sub_overflow(received, stamp->max_past_us, &lo)) lo = INT64_MIN;
    if (stamp->max_future_us > 0 && __builtin_add_overflow(received, stamp->max_future_us, &hi)) hi = INT64_MAX;
    return (t >= 0 && t >= lo && t <= hi) ? t : received;
}

static void add_stamps(normalizer *n, const event_stamp *stamp)
{
    size_t tenant_len = strlen(stamp->tenant), agent_len = strlen(stamp->agent_id);
    const json_value *agent = new_string(n, arena_strndup(n->arena, stamp->agent_id, agent_len), agent_len);
    PUSH_LIT(n, "mamori.tenant", new_string(n, arena_strndup(n->arena, stamp->tenant, tenant_len), tenant_len),
                KIND_STAMP);
    PUSH_LIT(n, "mamori.agent_id", agent, KIND_STAMP);
    if (n->received_us_cached != stamp->received_us || !n->received_text[0]) {
        clock_format_rfc3339(stamp->received_us, n->received_text);
        n->received_us_cached = stamp->received_us;
    }
    char *text = arena_memdup(n->arena, n->received_text, 28);
    PUSH_LIT(n, "mamori.received", new_string(n, text, 27), KIND_STAMP);
    PUSH_LIT(n, "host.id", agent, KIND_WEAK);
}

/* ---- sort, settle, write ----------------------------------------------------------------- */

static inline bool key_less(const struct sort_key *a, const struct sort_key *b)
{
    if (a->key0 != b->key0) return a->key0 < b->key0;
    if (a->key1 != b->key1) return a->key1 < b->key1;
    return entry_cmp(a->e, b->e) < 0;
}

static void sort_keys(struct sort_key *v, struct sort_key *tmp, uint32_t count)
{
    if (count <= 16) {
        for (uint32_t i = 1; i < count; i++) {
            struct sort_key k = v[i];
            uint32_t j = i;
            while (j > 0 && key_less(&k, &v[j - 1])) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = k;
        }
        return;
    }
    uint32_t half = count / 2;
    sort_keys(v, tmp, half);
    sort_keys(v + half, tmp + half, count - half);
    if (!key_less(&v[half], &v[half - 1])) return;
    uint32_t i = 0, j = half, k = 0;
    while (i < half && j < count) tmp[k++] = key_less(&v[j], &v[i]) ? v[j++] : v[i++];
    while (i < half) tmp[k++] = v[i++];
    while (j < count) tmp[k++] = v[j++];
    memcpy(v, tmp, count * sizeof *v);
}

static void sort_entries(normalizer *n, uint32_t count)
{
    struct sort_key *keys = n->sort_keys;
    for (uint32_t i = 0; i < count; i++) {
        struct entry *e = n->order[i];
        keys[i] = (struct sort_key){e->key0, e->key1, e};
    }
    sort_keys(keys, n->sort_tmp, count);
    for (uint32_t i = 0; i < count; i++) n->order[i] = keys[i].e;
}

static bool json_equal(const json_value *a, const json_value *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_NULL: return true;
    case JSON_BOOL: return a->num.b == b->num.b;
    case JSON_NUMBER:
        if ((a->flags & JSON_FLAG_INT) && (b->flags & JSON_FLAG_INT)) return a->num.i == b->num.i;
        return a->str && b->str && a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case JSON_STRING: return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case JSON_ARRAY:
        if (a->len != b->len) return false;
        for (uint32_t i = 0; i < a->len; i++)
            if (!json_equal(&a->items[i], &b->items[i])) return false;
        return true;
    default:
        if (a->len != b->len) return false;
        for (uint32_t i = 0; i < a->len; i++) {
            const json_member *x = &a->members[i], *y = &b->members[i];
            if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0 || !json_equal(&x->value, &y->value))
                return false;
        }
        return true;
    }
}

/* An EventData field that lost its ECS path goes back to winlog.event_data.<Field>, where
 * the detection engine looks first (docs/ecs-mapping.md, "collisions"). */
static void displace(normalizer *n, struct entry *e)
{
    size_t len = EVENT_DATA_PREFIX_LEN + e->src_len;
    char *path = arena_alloc(n->arena, len + 1);
    memcpy(path, EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN);
    memcpy(path + EVENT_DATA_PREFIX_LEN, e->src_name, e->src_len);
    path[len] = '\0';
    entry_set_path(e, path, len);
    e->kind = KIND_INPUT;
}

/* One pass over the sorted entries: of each group of equal paths keep one. Returns the
 * kept count in *count; *again when displaced entries need another sort and pass. */
static int settle(normalizer *n, uint32_t *count, bool *again)
{
    struct entry **v = n->order;
    uint32_t total = *count, out = 0;
    *again = false;
    for (uint32_t i = 0; i < total;) {
        uint32_t j = i + 1;
        while (j < total && same_path(v[i], v[j])) j++;
        if (j == i + 1) {
            v[out++] = v[i++];
            continue;
        }
        struct entry *by_kind[KIND_STAMP + 1] = {NULL};
        uint32_t inputs = 0;
        for (uint32_t k = i; k < j; k++) {
            struct entry *e = v[k];
            if (e->kind == KIND_INPUT) inputs++;
            if (!by_kind[e->kind] || (e->kind == KIND_MAPPED && e->prio < by_kind[e->kind]->prio)) by_kind[e->kind] = e;
        }
        struct entry *winner = by_kind[KIND_STAMP] ? by_kind[KIND_STAMP]
                               : by_kind[KIND_DERIVED] ? by_kind[KIND_DERIVED]
                               : by_kind[KIND_INPUT]   ? by_kind[KIND_INPUT]
                               : by_kind[KIND_MAPPED]  ? by_kind[KIND_MAPPED]
                                                       : by_kind[KIND_WEAK];
        if (inputs > 1 && winner->kind == KIND_INPUT) return reject(n, "duplicate field", v[i]->path, v[i]->path_len);
        for (uint32_t k = i; k < j; k++) {
            struct entry *e = v[k];
            if (e == winner) {
                v[out++] = e;
                continue;
            }
            if (e->kind != KIND_MAPPED) continue; /* overwritten */
            if (winner->kind == KIND_MAPPED && e->src_len == winner->src_len &&
                memcmp(e->src_name, winner->src_name, e->src_len) == 0)
                return reject(n, "duplicate field", e->src_name, e->src_len);
            if (winner->kind == KIND_INPUT && json_equal(e->value, winner->value)) continue; /* same fact twice */
            displace(n, e);
            v[out++] = e;
            *again = true;
        }
        i = j;
    }
    *count = out;
    return 0;
}

/* High bit set in each byte of w that is < 0x20, '"' or '\\'. Bytes above a flagged one
 * may be flagged falsely (borrows), the lowest flag is always right. */
static inline uint64_t escape_mask(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = w ^ (ones * '"'), bslash = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash)) & highs;
}

/* Position of the first '.' in p[from..len), or len. */
static inline size_t find_dot(const char *p, size_t from, size_t len)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = from;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t t = w ^ (ones * '.');
        uint64_t m = (t - ones) & ~t & highs;
        if (m) return i + (size_t)__builtin_ctzll(m) / 8;
    }
    while (i < len && p[i] != '.') i++;
    return i;
}

static size_t value_bound(const json_value *v)
{
    switch (v->type) {
    case JSON_STRING: return 6 * (size_t)v->len + 2;
    case JSON_NUMBER: return v->str ? v->len : 24;
    case JSON_ARRAY: {
        size_t n = 2 + v->len;
        for (uint32_t i = 0; i < v->len; i++) n += value_bound(&v->items[i]);
        return n;
    }
    case JSON_OBJECT: {
        size_t n = 2 + 2 * (size_t)v->len;
        for (uint32_t i = 0; i < v->len; i++) n += 6 * (size_t)v->members[i].key_len + 2 + value_bound(&v->members[i].value);
        return n;
    }
    default: return 5;
    }
}

/* The short escape of a byte that has one ('"' → '"', '\n' → 'n'); 0 means \u00XX. */
static const char escape_letter[256] = {['"'] = '"', ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r',
                                        ['\t'] = 't', ['\b'] = 'b', ['\f'] = 'f'};

/* Writes s quoted and escaped at o. May store up to 15 bytes past the returned end (the
 * caller reserves slack): clean blocks are copied whole. */
static char *put_string(char *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '"';
    size_t i = 0;
    while (i < len) {
        size_t avail = len - i, clean, block;
#ifdef __SSE2__
        if (avail >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                                       _mm_cmpeq_epi8(_mm_max_epu8(x, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f)));
            unsigned mask = (unsigned)_mm_movemask_epi8(bad);
            _mm_storeu_si128((__m128i *)(void *)o, x);
            clean = mask ? (size_t)__builtin_ctz(mask) : 16;
            block = 16;
        } else
#endif
        {
            uint64_t w = load_partial(s + i, MAMORI_MIN(avail, 8), 0x2020202020202020ULL);
            uint64_t m = escape_mask(w);
            memcpy(o, &w, 8);
            clean = m ? (size_t)__builtin_ctzll(m) / 8 : 8;
            block = 8;
        }
        if (clean > avail) clean = avail;
        o += clean;
        i += clean;
        if (i == len || clean == block) continue; /* no escape in this block */
        unsigned char c = (unsigned char)s[i++];
        o[0] = '\\';
        o[1] = escape_letter[c];
        if (MAMORI_LIKELY(o[1])) {
            o += 2;
            continue;
        }
        o[1] = 'u';
        o[2] = '0';
        o[3] = '0';
        o[4] = hex[c >> 4];
        o[5] = hex[c & 15];
        o += 6;
    }
    *o++ = '"';
    return o;
}

static char *put_bytes(char *o, const char *s, size_t len)
{
    memcpy(o, s, len);
    return o + len;
}

static int member_cmp(const json_member *a, const json_member *b)
{
    int c = memcmp(a->key, b->key, MAMORI_MIN(a->key_len, b->key_len));
    if (c) return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static void sort_members(const json_member **v, const json_member **tmp, uint32_t count)
{
    if (count <= 8) {
        for (uint32_t i = 1; i < count; i++) {
            const json_member *m = v[i];
            uint32_t j = i;
            while (j > 0 && member_cmp(v[j - 1], m) > 0) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = m;
        }
        return;
    }
    uint32_t half = count / 2;
    sort_members(v, tmp, half);
    sort_members(v + half, tmp + half, count - half);
    uint32_t i = 0, j = half, k = 0;
    while (i < half && j < count) tmp[k++] = member_cmp(v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < half) tmp[k++] = v[i++];
    while (j < count) tmp[k++] = v[j++];
    memcpy(v, tmp, count * sizeof *v);
}

/* Values are written as given, except that objects inside arrays get their members sorted
 * too, so equal content always gives equal bytes. */
static char *put_value(normalizer *n, char *o, const json_value *v)
{
    switch (v->type) {
    case JSON_STRING: return put_string(o, v->str, v->len);
    case JSON_NULL: return put_bytes(o, "null", 4);
    case JSON_BOOL: return v->num.b ? put_bytes(o, "true", 4) : put_bytes(o, "false", 5);
    case JSON_NUMBER:
        if (v->str) return put_bytes(o, v->str, v->len);
        if (v->flags & JSON_FLAG_INT) return o + format_i64(v->num.i, o);
        return o + snprintf(o, 24, "%.17g", v->num.d);
    case JSON_ARRAY:
        *o++ = '[';
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) *o++ = ',';
            o = put_value(n, o, &v->items[i]);
        }
        *o++ = ']';
        return o;
    default: {
        const json_member **order = arena_alloc(n->arena, 2 * (size_t)v->len * sizeof *order + 1);
        for (uint32_t i = 0; i < v->len; i++) order[i] = &v->members[i];
        sort_members(order, order + v->len, v->len);
        *o++ = '{';
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) *o++ = ',';
            o = put_string(o, order[i]->key, order[i]->key_len);
            *o++ = ':';
            o = put_value(n, o, &order[i]->value);
        }
        *o++ = '}';
        return o;
    }
    }
}

/* Length of the common prefix of two paths. */
static size_t common_prefix(const struct entry *a, const struct entry *b)
{
    size_t n = MAMORI_MIN(a->path_len, b->path_len), i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a->path + i, 8);
        memcpy(&y, b->path + i, 8);
        if (x != y) return i + (size_t)__builtin_ctzll(x ^ y) / 8;
    }
    while (i < n && a->path[i] == b->path[i]) i++;
    return i;
}

/* Rebuilds nested objects from the sorted flat paths into n->out. */
static void write_json(normalizer *n, struct entry *const *v, uint32_t count)
{
    size_t bound = 2;
    /* per path byte: up to 6 escaped, plus 4 per segment (quotes, colon, brace) */
    for (uint32_t i = 0; i < count; i++) bound += 9 * (size_t)v[i]->path_len + 16 + value_bound(v[i]->value);
    buf *b = &n->out;
    buf_clear(b);
    buf_reserve(b, bound + 16); /* put_string's block stores may run 15 bytes ahead */
    char *o = b->data;
    *o++ = '{';
    /* Objects open below the root: seg_end[k] is where the k-th of them ends ('.') in the
     * previous path. A path has at most EVENT_MAX_PATH_BYTES / 2 dots. */
    uint32_t seg_end[EVENT_MAX_PATH_BYTES / 2 + 1];
    uint32_t depth = 0;
    const struct entry *prev = NULL;
    for (uint32_t i = 0; i < count; i++) {
        const struct entry *e = v[i];
        uint32_t common = 0;
        if (prev) {
            size_t same = common_prefix(prev, e);
            while (common < depth && seg_end[common] < same) common++;
            for (uint32_t k = common; k < depth; k++) *o++ = '}';
            *o++ = ',';
        }
        depth = common;
        uint32_t pos = common ? seg_end[common - 1] + 1 : 0;
        for (uint32_t j = (uint32_t)find_dot(e->path, pos, e->path_len); j < e->path_len;
             j = (uint32_t)find_dot(e->path, pos, e->path_len)) {
            o = put_string(o, e->path + pos, j - pos);
            *o++ = ':';
            *o++ = '{';
            MAMORI_ASSERT(depth < MAMORI_ARRAY_LEN(seg_end)); /* segments are never empty */
            seg_end[depth++] = j;
            pos = j + 1;
        }
        o = put_string(o, e->path + pos, e->path_len - pos);
        *o++ = ':';
        o = put_value(n, o, e->value);
        prev = e;
    }
    for (uint32_t k = 0; k < depth; k++) *o++ = '}';
    *o++ = '}';
    b->len = (size_t)(o - b->data);
    MAMORI_ASSERT(b->len <= bound);
}

static int bytewise_cmp(const struct entry *a, const struct entry *b)
{
    int c = memcmp(a->path, b->path, MAMORI_MIN(a->path_len, b->path_len));
    if (c) return c;
    return a->path_len < b->path_len ? -1 : a->path_len > b->path_len;
}

/* Only when some path holds a byte below '.': then bytewise order (event_get's) differs. */
static void sort_bytewise(struct entry **v, struct entry **tmp, uint32_t count)
{
    if (count <= 12) {
        for (uint32_t i = 1; i < count; i++) {
            struct entry *e = v[i];
            uint32_t j = i;
            while (j > 0 && bytewise_cmp(v[j - 1], e) > 0) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = e;
        }
        return;
    }
    uint32_t half = count / 2;
    sort_bytewise(v, tmp, half);
    sort_bytewise(v + half, tmp + half, count - half);
    uint32_t i = 0, j = half, k = 0;
    while (i < half && j < count) tmp[k++] = bytewise_cmp(v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < half) tmp[k++] = v[i++];
    while (j < count) tmp[k++] = v[j++];
    memcpy(v, tmp, count * sizeof *v);
}

/* ---- the entry point ------------------------------------------------------------------- */

enum shape { SHAPE_ECS, SHAPE_EVTX, SHAPE_NXLOG, SHAPE_WINLOGBEAT };

static enum shape detect_shape(const json_value *raw, enum event_format format, const json_value **evtx_event)
{
    bool event_id = false, channel = false, winlog = false;
    const json_value *event = NULL;
    for (uint32_t i = 0; i < raw->len; i++) {
        const json_member *m = &raw->members[i];
        const char *k = m->key;
        switch (m->key_len) {
        case 5:
            if (memcmp(k, "Event", 5) == 0 && m->value.type == JSON_OBJECT && !event) event = &m->value;
            break;
        case 6:
            if (memcmp(k, "winlog", 6) == 0 && m->value.type == JSON_OBJECT)
                winlog = winlog || json_object_get(&m->value, "event_data", 10) || json_object_get(&m->value, "channel", 7);
            break;
        case 7:
            if (memcmp(k, "EventID", 7) == 0) event_id = true;
            else if (memcmp(k, "Channel", 7) == 0) channel = true;
            break;
        case 10:
            if (memcmp(k, "SourceName", 10) == 0) channel = true;
            break;
        default:
            if (m->key_len > 7 && memcmp(k, "winlog.", 7) == 0 &&
                (KEY_IS(k, m->key_len, "winlog.channel") ||
                 (m->key_len >= 17 && memcmp(k, "winlog.event_data", 17) == 0 && (m->key_len == 17 || k[17] == '.'))))
                winlog = true;
            break;
        }
    }
    if (format == EVENT_FORMAT_ECS) return SHAPE_ECS;
    const json_value *system = event ? json_object_get(event, "System", 6) : NULL;
    if (system && system->type == JSON_OBJECT) {
        *evtx_event = event;
        return SHAPE_EVTX;
    }
    if (winlog) return SHAPE_WINLOGBEAT;
    if (event_id && (channel || format == EVENT_FORMAT_WINLOG)) return SHAPE_NXLOG;
    return SHAPE_ECS;
}

int normalize_event(normalizer *n, arena *a, enum event_format format, const json_value *raw,
                    const event_stamp *stamp, uint32_t index, mamori_event *out, char *err, size_t err_len)
{
    MAMORI_ASSERT(n && a && raw && stamp && out && stamp->tenant && stamp->agent_id);
    MAMORI_ASSERT(stamp->received_us >= 0);
    n->arena = a;
    n->err = err;
    n->err_len = err_len;
    if (err && err_len) err[0] = '\0';
    n->entry_count = 0;
    n->event_data_count = 0;
    n->timestamp = NULL;
    n->low_bytes = false;
    n->winlogbeat = false;
    memset(n->ws, 0, sizeof n->ws);
    memset(out, 0, sizeof *out);

    if (raw->type != JSON_OBJECT) return reject(n, "event is not an object", NULL, 0);
    const json_value *evtx_event = NULL;
    enum shape shape = detect_shape(raw, format, &evtx_event);
    int rc = 0;
    switch (shape) {
    case SHAPE_ECS: rc = flatten(n, raw, 0); break;
    case SHAPE_EVTX: rc = collect_evtx(n, raw, evtx_event); break;
    case SHAPE_NXLOG: rc = collect_nxlog(n, raw); break;
    case SHAPE_WINLOGBEAT:
        n->winlogbeat = true;
        rc = flatten(n, raw, 0);
        break;
    }
    if (!rc && shape != SHAPE_ECS) rc = winlog_finish(n);
    if (rc) return rc;
    int64_t ts_us = handle_time(n, stamp, shape != SHAPE_ECS);
    add_stamps(n, stamp);

    uint32_t count = n->entry_count;
    for (uint32_t i = 0; i < count; i++) n->order[i] = &n->entries[i];
    bool again = true;
    for (int round = 0; again; round++) {
        if (round == RESOLVE_ROUNDS_MAX) return reject(n, "duplicate field", n->order[0]->path, n->order[0]->path_len);
        sort_entries(n, count);
        rc = settle(n, &count, &again);
        if (rc) return rc;
    }
    for (uint32_t i = 0; i + 1 < count; i++) {
        const struct entry *x = n->order[i], *y = n->order[i + 1];
        if (x->path_len < y->path_len && y->path[x->path_len] == '.' && memcmp(x->path, y->path, x->path_len) == 0)
            return reject(n, "conflicting field", x->path, x->path_len);
    }
    if (count > EVENT_MAX_FIELDS) return reject(n, "too many fields", NULL, 0);

    write_json(n, n->order, count);
    if (n->out.len > UINT32_MAX) return reject(n, "event too large", NULL, 0);
    if (n->low_bytes) sort_bytewise(n->order, n->scratch, count);
    event_field *fields = arena_alloc(a, (size_t)count * sizeof *fields + 1);
    for (uint32_t i = 0; i < count; i++) {
        fields[i].path = n->order[i]->path;
        fields[i].path_len = n->order[i]->path_len;
        fields[i].value = n->order[i]->value;
    }
    char *json = arena_alloc(a, n->out.len + 1);
    memcpy(json, n->out.data, n->out.len);
    json[n->out.len] = '\0';

    out->ts_us = ts_us;
    out->index = index;
    out->field_count = count;
    out->fields = fields;
    out->json = json;
    out->json_len = (uint32_t)n->out.len;
    return 0;
}
