/* core/normalize_winlog.c — the winlog side of the normalizer, first half: the three shapes
 * (evtx_dump, NXLog flat, Winlogbeat) are split into System fields (n->ws) and EventData
 * entries; normalize_ecs.c turns them into ECS (norm_winlog_finish). */
#include "ecs_map.h"
#include "event.h"
#include "logsource.h"
#include "normalize_internal.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

/* ---- winlog: EventData names and values ------------------------------------------------- */

/* EventData names become one path segment: spaces go ("Source Name" is Sigma's SourceName),
 * '.' becomes '_' (it would split the path), an empty name becomes "_". Returns a view
 * into `key` when nothing changes. Most names hold no byte <= '.' (space, dot and the bytes
 * below '.' that change the sort order): a word-at-a-time check shows it. */
static bool name_changes(const char *key, size_t len, bool keep_dots, bool *low_bytes)
{
    size_t j = 0;
    for (; j + 8 <= len; j += 8) {
        uint64_t w;
        memcpy(&w, key + j, 8);
        if ((w - 0x2f2f2f2f2f2f2f2fULL) & ~w & 0x8080808080808080ULL) break;
    }
    bool change = len == 0;
    for (; j < len; j++) {
        unsigned char c = (unsigned char)key[j];
        if (c > '.') continue;
        if (c < '.') *low_bytes = true;
        if (c == ' ' || (c == '.' && !keep_dots)) change = true;
    }
    return change;
}

static const char *sanitize_name(normalizer *n, const char *key, size_t len, uint32_t *out_len, bool keep_dots)
{
    if (!name_changes(key, len, keep_dots, &n->low_bytes)) {
        *out_len = (uint32_t)len;
        return key;
    }
    char *o = norm_alloc(n, len + 2);
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
    if (n->entry_count + n->event_data_count >= EVENT_MAX_FIELDS) return norm_reject(n, "too many fields", NULL, 0);
    if (EVENT_DATA_PREFIX_LEN + name_len > EVENT_MAX_PATH_BYTES)
        return norm_reject(n, "field path too long", name, name_len);
    struct event_data *d = &n->event_data[n->event_data_count++];
    d->name = name;
    d->name_len = name_len;
    d->member = -1;
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
        const char *stable = name_len == 0 ? "_" : norm_strndup(n, name, name_len);
        return push_event_data(n, stable, (uint32_t)(name_len ? name_len : 1), v);
    }
    for (uint32_t i = 0; i < v->len; i++) {
        const json_member *m = &v->members[i];
        if (KEY_IS(m->key, m->key_len, "#attributes")) continue;
        uint32_t seg_len;
        const char *seg = sanitize_name(n, m->key, m->key_len, &seg_len, false);
        if (name_len + 1 + seg_len > EVENT_MAX_PATH_BYTES || depth > JSON_MAX_DEPTH)
            return norm_reject(n, "field path too long", name, name_len);
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
    if (name_len > EVENT_MAX_PATH_BYTES) return norm_reject(n, "field path too long", name, name_len);
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

int norm_collect_evtx(normalizer *n, const json_value *raw, const json_value *event)
{
    /* Anything beside "Event" is ECS the shipper added. */
    for (uint32_t i = 0; i < raw->len; i++) {
        const json_member *m = &raw->members[i];
        if (&m->value == event) continue;
        int rc = norm_flatten_member(n, m, 0);
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
#define NX_SLOTS 256u
_Static_assert(MAMORI_ARRAY_LEN(nx_keys) * 4 < NX_SLOTS, "NXLog key index too full");
_Static_assert(MAMORI_ARRAY_LEN(nx_keys) <= 64, "norm_collect_nxlog's deferred_seen is a uint64_t");
static uint8_t nx_slots[NX_SLOTS]; /* row + 1; 0 = empty */
static uint8_t nx_key_lens[MAMORI_ARRAY_LEN(nx_keys)];
static pthread_once_t nx_once = PTHREAD_ONCE_INIT;

/* First and last 8 bytes (overlapping or padded) and the length, multiplied: most keys
 * looked up are EventData names that are not in the table, and a well-spread hash in a
 * table at most 1/4 full ends their probe at the first or second slot. */
static inline uint32_t nx_hash(const char *key, size_t len)
{
    uint64_t head = load_partial(key, MAMORI_MIN(len, 8), 0);
    uint64_t tail = len > 8 ? load_partial(key + len - 8, 8, 0) : 0;
    uint64_t h = (head ^ (tail << 7 | tail >> 57) ^ (uint64_t)len) * 0x9E3779B97F4A7C15ULL;
    return (uint32_t)(h >> 56) % NX_SLOTS;
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
        if (nx_key_lens[i] == len && bytes_eq(nx_keys[i].key, key, len)) return &nx_keys[i];
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

static uint64_t nx_lens_hash(const json_value *raw)
{
    uint64_t h = raw->len;
    for (uint32_t i = 0; i < raw->len; i++) h = (h << 5 | h >> 59) + raw->members[i].key_len;
    return h * 0x9E3779B97F4A7C15ULL;
}

static struct nx_shape_slot *nx_slot_of(normalizer *n, uint64_t lens_hash)
{
    return &n->nx_shapes[(lens_hash >> 40) % NX_SHAPE_SLOTS];
}

/* raw's keys are those of slot, byte for byte. */
static bool nx_slot_matches(const struct nx_shape_slot *slot, const json_value *raw)
{
    uint32_t count = raw->len;
    for (uint32_t i = 0; i < count; i++) {
        const struct nx_member_info *info = &slot->members[i];
        const json_member *m = &raw->members[i];
        uint32_t len = m->key_len;
        if (info->key_len != len || load_partial(m->key, MAMORI_MIN(len, 8u), 0) != info->head) return false;
        if (len <= 8) continue;
        if (load_partial(m->key + len - 8, 8, 0) != info->tail) return false;
        if (len > 16 && !bytes_eq(slot->keys + info->key_off + 8, m->key + 8, len - 16)) return false;
    }
    return true;
}

struct nx_shape_slot *norm_nx_shape_lookup(normalizer *n, const json_value *raw)
{
    n->nx_shape = NULL;
    uint32_t count = raw->len;
    if (count == 0 || count > NX_SHAPE_MEMBERS_MAX) return NULL;
    /* most events have the shape of the one before: its slot is tried before hashing */
    struct nx_shape_slot *slot = n->nx_last;
    if (!slot || slot->member_count != count || !nx_slot_matches(slot, raw)) {
        uint64_t h = nx_lens_hash(raw);
        slot = nx_slot_of(n, h);
        if (slot == n->nx_last || slot->member_count != count || slot->lens_hash != h || !nx_slot_matches(slot, raw))
            return NULL;
    }
    n->nx_shape = n->nx_last = slot;
    return slot;
}

/* The classification of raw's top-level keys from the shape cache (n->nx_shape when
 * norm_nx_shape_lookup found it already), or made and remembered; NULL when the event is too
 * large to remember. Sets n->nx_shape. */
static const struct nx_member_info *nx_shape_find(normalizer *n, const json_value *raw)
{
    if (n->nx_shape || norm_nx_shape_lookup(n, raw)) return n->nx_shape->members;
    uint32_t count = raw->len;
    if (count == 0 || count > NX_SHAPE_MEMBERS_MAX) return NULL;
    uint64_t h = nx_lens_hash(raw);
    struct nx_shape_slot *slot = nx_slot_of(n, h);
    size_t bytes = 0;
    for (uint32_t i = 0; i < count; i++) bytes += raw->members[i].key_len;
    if (bytes > NX_SHAPE_KEY_BYTES) {
        slot->member_count = 0;
        return NULL;
    }
    size_t off = 0;
    unsigned key_bits = 0;
    for (uint32_t i = 0; i < count; i++) {
        const json_member *m = &raw->members[i];
        struct nx_member_info *info = &slot->members[i];
        const struct nx_key *key = m->key_len ? nx_find(m->key, m->key_len) : NULL;
        bool low = false;
        bool clean = !name_changes(m->key, m->key_len, false, &low);
        key_bits |= norm_shape_key_bits(m->key, m->key_len);
        memcpy(slot->keys + off, m->key, m->key_len);
        *info = (struct nx_member_info){.head = load_partial(m->key, MAMORI_MIN(m->key_len, 8u), 0),
                                        .tail = m->key_len > 8 ? load_partial(m->key + m->key_len - 8, 8, 0) : 0,
                                        .key_off = (uint16_t)off, .key_len = (uint16_t)m->key_len,
                                        .ecs_row = NX_ECS_ROW_UNKNOWN, .nx_row = (uint8_t)(key ? key - nx_keys + 1 : 0),
                                        .name_clean = clean, .low_bytes = low,
                                        .plain_event_data = !key && clean && !low &&
                                                            EVENT_DATA_PREFIX_LEN + m->key_len <= EVENT_MAX_PATH_BYTES};
        off += m->key_len;
    }
    /* detect_shape's answer from these keys alone, when their values do not enter it */
    slot->nxlog_by_keys = 0;
    if (!(key_bits & (SHAPE_KEY_EVENT | SHAPE_KEY_WINLOG | SHAPE_KEY_WINLOGBEAT)) && (key_bits & SHAPE_KEY_EVENT_ID)) {
        slot->nxlog_by_keys = NX_BY_KEYS_WINLOG;
        if (key_bits & SHAPE_KEY_CHANNEL) slot->nxlog_by_keys |= NX_BY_KEYS_AUTO;
    }
    slot->lens_hash = h;
    slot->member_count = count;
    slot->ls_valid = false;
    n->nx_shape = n->nx_last = slot;
    return slot->members;
}

/* A top-level EventData member (not in nx_keys, or a deferred key that stays EventData). */
static int nx_event_data(normalizer *n, const json_member *m, const struct nx_member_info *infos, uint32_t member)
{
    if (!infos || !infos[member].name_clean || m->value.type == JSON_OBJECT)
        return collect_event_data_member(n, m->key, m->key_len, &m->value);
    if (infos[member].low_bytes) n->low_bytes = true;
    int rc = push_event_data(n, m->key, m->key_len, &m->value);
    if (!rc) n->event_data[n->event_data_count - 1].member = (int32_t)member;
    return rc;
}

int norm_collect_nxlog(normalizer *n, const json_value *raw)
{
    pthread_once(&nx_once, nx_index_build);
    const struct nx_member_info *infos = nx_shape_find(n, raw);
    const json_value **ws = n->ws;
    const json_member *deferred[MAMORI_ARRAY_LEN(nx_keys)];
    const struct nx_key *deferred_key[MAMORI_ARRAY_LEN(nx_keys)];
    uint32_t deferred_member[MAMORI_ARRAY_LEN(nx_keys)];
    size_t deferred_count = 0;
    uint64_t deferred_seen = 0; /* by nx_keys index */
    bool event_type_original = false;
    for (uint32_t i = 0; i < raw->len; i++) {
        const json_member *m = &raw->members[i];
        const json_value *v = &m->value;
        if (infos && infos[i].plain_event_data && v->type != JSON_OBJECT) { /* nx_event_data's common case */
            if (n->entry_count + n->event_data_count >= EVENT_MAX_FIELDS) return norm_reject(n, "too many fields", NULL, 0);
            struct event_data *d = &n->event_data[n->event_data_count++];
            d->name = m->key;
            d->name_len = m->key_len;
            d->member = (int32_t)i;
            d->value = v;
            continue;
        }
        const struct nx_key *key = infos   ? (infos[i].nx_row ? &nx_keys[infos[i].nx_row - 1] : NULL)
                                   : m->key_len ? nx_find(m->key, m->key_len)
                                                : NULL;
        int rc = 0;
        if (!key) {
            rc = nx_event_data(n, m, infos, i);
        } else if (v->type == JSON_OBJECT && key->action != NX_CONTAINER) {
            rc = norm_flatten_member(n, m, 0); /* not what NXLog writes there: keep it as ECS */
        } else {
            switch (key->action) {
            case NX_SLOT:
                if (ws[key->slot]) return norm_reject(n, "duplicate field", m->key, m->key_len);
                ws[key->slot] = v;
                break;
            case NX_TIMESTAMP:
                if (n->timestamp) return norm_reject(n, "duplicate field", m->key, m->key_len);
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
                if (deferred_seen & bit) return norm_reject(n, "duplicate field", m->key, m->key_len);
                deferred_seen |= bit;
                MAMORI_ASSERT(deferred_count < MAMORI_ARRAY_LEN(deferred));
                deferred[deferred_count] = m;
                deferred_member[deferred_count] = i;
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
        else rc = nx_event_data(n, m, infos, deferred_member[i]);
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
int norm_winlogbeat_leaf(normalizer *n, size_t len, const json_value *v)
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
        if (name == p + prefix) name = norm_strndup(n, name, name_len); /* n->path is reused */
        int rc = push_event_data(n, name, name_len, v);
        return rc ? rc : 1;
    }
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(winlogbeat_paths); i++) {
        const char *path = winlogbeat_paths[i].path;
        if (strlen(path) != len || memcmp(path, p, len) != 0) continue;
        uint8_t slot = winlogbeat_paths[i].slot;
        if (n->ws[slot]) return norm_reject(n, "duplicate field", p, len);
        n->ws[slot] = v;
        return 1;
    }
    return 0;
}
