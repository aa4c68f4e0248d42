/* core/normalize_winlog.c — the winlog side of the normalizer: the three shapes (evtx_dump,
 * NXLog flat, Winlogbeat) are split into System fields and EventData; System fields become
 * winlog.* / event.* entries, EventData goes through core/ecs_map (unmapped names stay under
 * winlog.event_data.*), then process/file names and hashes are enriched. */
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
        const char *stable = name_len == 0 ? "_" : arena_strndup(n->arena, name, name_len);
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

/* The classification of raw's top-level keys from the shape cache, checked byte for byte,
 * or made and remembered; NULL when the event is too large to remember. Sets n->nx_shape. */
static const struct nx_member_info *nx_shape_find(normalizer *n, const json_value *raw)
{
    n->nx_shape = NULL;
    uint32_t count = raw->len;
    if (count == 0 || count > NX_SHAPE_MEMBERS_MAX) return NULL;
    uint64_t h = count;
    for (uint32_t i = 0; i < count; i++) h = (h << 5 | h >> 59) + raw->members[i].key_len;
    h *= 0x9E3779B97F4A7C15ULL;
    struct nx_shape_slot *slot = &n->nx_shapes[(h >> 40) % NX_SHAPE_SLOTS];
    if (slot->member_count == count && slot->lens_hash == h) {
        uint32_t i = 0;
        for (; i < count; i++) {
            const struct nx_member_info *info = &slot->members[i];
            const json_member *m = &raw->members[i];
            uint32_t len = m->key_len;
            if (info->key_len != len || load_partial(m->key, MAMORI_MIN(len, 8u), 0) != info->head) break;
            if (len <= 8) continue;
            if (load_partial(m->key + len - 8, 8, 0) != info->tail) break;
            if (len > 16 && !bytes_eq(slot->keys + info->key_off + 8, m->key + 8, len - 16)) break;
        }
        if (i == count) {
            n->nx_shape = slot;
            return slot->members;
        }
    }
    size_t bytes = 0;
    for (uint32_t i = 0; i < count; i++) bytes += raw->members[i].key_len;
    if (bytes > NX_SHAPE_KEY_BYTES) {
        slot->member_count = 0;
        return NULL;
    }
    size_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        const json_member *m = &raw->members[i];
        struct nx_member_info *info = &slot->members[i];
        const struct nx_key *key = m->key_len ? nx_find(m->key, m->key_len) : NULL;
        bool low = false;
        bool clean = !name_changes(m->key, m->key_len, false, &low);
        memcpy(slot->keys + off, m->key, m->key_len);
        *info = (struct nx_member_info){.head = load_partial(m->key, MAMORI_MIN(m->key_len, 8u), 0),
                                        .tail = m->key_len > 8 ? load_partial(m->key + m->key_len - 8, 8, 0) : 0,
                                        .key_off = (uint16_t)off, .key_len = (uint16_t)m->key_len,
                                        .ecs_row = NX_ECS_ROW_UNKNOWN, .nx_row = (uint8_t)(key ? key - nx_keys + 1 : 0),
                                        .name_clean = clean, .low_bytes = low};
        off += m->key_len;
    }
    slot->lens_hash = h;
    slot->member_count = count;
    slot->ls_valid = false;
    n->nx_shape = slot;
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
        if (name == p + prefix) name = arena_strndup(n->arena, name, name_len); /* n->path is reused */
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

/* ---- winlog: System fields, EventData mapping, enrichment ------------------------------ */

static const json_value level_values[] = {
#define LEVEL_INFORMATION 0
    {.type = JSON_STRING, .len = 11, .str = "information"},
#define LEVEL_CRITICAL 1
    {.type = JSON_STRING, .len = 8, .str = "critical"},
#define LEVEL_ERROR 2
    {.type = JSON_STRING, .len = 5, .str = "error"},
#define LEVEL_WARNING 3
    {.type = JSON_STRING, .len = 7, .str = "warning"},
#define LEVEL_VERBOSE 4
    {.type = JSON_STRING, .len = 7, .str = "verbose"},
};

/* log.level: a constant value (level_values), or NULL. */
static const json_value *level_value(const json_value *level, const json_value *severity)
{
    int64_t i;
    if (norm_value_int(level, &i)) {
        switch (i) {
        case 0:
        case 4: return &level_values[LEVEL_INFORMATION];
        case 1: return &level_values[LEVEL_CRITICAL];
        case 2: return &level_values[LEVEL_ERROR];
        case 3: return &level_values[LEVEL_WARNING];
        case 5: return &level_values[LEVEL_VERBOSE];
        default: return NULL;
        }
    }
    if (json_is_string(severity)) {
        static const struct {
            const char *severity;
            unsigned level;
        } map[] = {{"INFO", LEVEL_INFORMATION}, {"WARNING", LEVEL_WARNING}, {"ERROR", LEVEL_ERROR},
                   {"CRITICAL", LEVEL_CRITICAL}, {"DEBUG", LEVEL_VERBOSE}};
        for (size_t k = 0; k < MAMORI_ARRAY_LEN(map); k++)
            if (strlen(map[k].severity) == severity->len && memcmp(map[k].severity, severity->str, severity->len) == 0)
                return &level_values[map[k].level];
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

static inline void push_system(normalizer *n, const char *path, size_t len, uint64_t key0, uint64_t key1,
                               uint32_t hash, const json_value *v)
{
    if (v && v->type != JSON_OBJECT) norm_push_keyed(n, path, len, key0, key1, hash, false, v, KIND_DERIVED);
}
#define PUSH_SYSTEM(n, lit, v)                                                                                    \
    push_system((n), lit, sizeof lit - 1, rank_word(lit, sizeof lit - 1, 0), rank_word(lit, sizeof lit - 1, 8), \
                event_path_hash(lit, sizeof lit - 1), (v))

/* Constant values shared by every event (never written: the fields hold const pointers),
 * instead of one arena value each per event. */
#define STATIC_STRING(lit) {.type = JSON_STRING, .len = sizeof lit - 1, .str = lit}
static const json_value kind_event = STATIC_STRING("event");
static const json_value os_values[2] = {STATIC_STRING("windows"), STATIC_STRING("linux")};
static json_value module_values[LOGSOURCE_SERVICE_COUNT];
static pthread_once_t module_values_once = PTHREAD_ONCE_INIT;

static void module_values_build(void)
{
    for (size_t i = 0; i < LOGSOURCE_SERVICE_COUNT; i++) {
        const char *name = logsource_service_name((enum logsource_service)i);
        module_values[i] = (json_value){.type = JSON_STRING, .len = (uint32_t)strlen(name), .str = name};
    }
}

static const json_value *module_value(normalizer *n, unsigned service)
{
    pthread_once(&module_values_once, module_values_build);
    if (service < LOGSOURCE_SERVICE_COUNT) return &module_values[service];
    const char *module = logsource_service_name((enum logsource_service)service);
    return new_string(n, module, strlen(module));
}

/* Pushed in path order ('.' first, as norm_sort_entries orders): whichever of them an event
 * has, they reach the sort as a run already in order, which its insertion sorts and merges
 * pass with one comparison each. Their paths are all different, so the order changes no
 * outcome of norm_settle. */
static void emit_system(normalizer *n, const struct logsource_set *ls, const struct logsource_winlog_ecs *ecs,
                        bool have_event_id, int64_t event_id)
{
    const json_value **ws = n->ws;
    const json_value *provider = ws[WS_PROVIDER_NAME] && ws[WS_PROVIDER_NAME]->type != JSON_OBJECT ? ws[WS_PROVIDER_NAME] : NULL;
    const json_value *computer = ws[WS_COMPUTER] && ws[WS_COMPUTER]->type != JSON_OBJECT ? ws[WS_COMPUTER] : NULL;
    json_value *id = NULL;
    const json_value *code = NULL;
    if (have_event_id) {
        char *text = arena_alloc(n->arena, 24);
        size_t len = norm_format_i64(event_id, text);
        id = new_value(n, JSON_NUMBER); /* an integer with its decimal text */
        id->flags = JSON_FLAG_INT;
        id->num.i = event_id;
        id->str = text;
        id->len = (uint32_t)len;
        code = new_string(n, text, len);
    }
    if (ecs->category[0]) PUSH_LIT(n, "event.category", string_list(n, ecs->category), KIND_DERIVED);
    if (code) PUSH_LIT(n, "event.code", code, KIND_DERIVED);
    PUSH_LIT(n, "event.kind", &kind_event, KIND_DERIVED);
    if (ls->service) PUSH_LIT(n, "event.module", module_value(n, ls->service), KIND_DERIVED);
    if (provider) PUSH_SYSTEM(n, "event.provider", provider);
    if (ecs->type[0]) PUSH_LIT(n, "event.type", string_list(n, ecs->type), KIND_DERIVED);
    if (computer) PUSH_LIT(n, "host.name", computer, KIND_WEAK);
    PUSH_LIT(n, "host.os.type", &os_values[ls->product == LOGSOURCE_PRODUCT_LINUX], KIND_WEAK);
    const json_value *level = level_value(ws[WS_LEVEL], ws[WS_SEVERITY]);
    if (level) PUSH_LIT(n, "log.level", level, KIND_DERIVED);
    if (ws[WS_MESSAGE]) PUSH_SYSTEM(n, "message", norm_as_text(n, ws[WS_MESSAGE]));
    if (ws[WS_ACTIVITY_ID]) PUSH_SYSTEM(n, "winlog.activity_id", norm_as_guid(n, ws[WS_ACTIVITY_ID]));
    PUSH_SYSTEM(n, "winlog.channel", ws[WS_CHANNEL]);
    if (computer) PUSH_SYSTEM(n, "winlog.computer_name", computer);
    if (id) PUSH_LIT(n, "winlog.event_id", id, KIND_DERIVED);
    else PUSH_SYSTEM(n, "winlog.event_id", ws[WS_EVENT_ID]);
    if (ws[WS_KEYWORDS]) PUSH_SYSTEM(n, "winlog.keywords", norm_as_keywords(n, ws[WS_KEYWORDS]));
#define SYSTEM_LONG(slot, lit) \
    if (ws[slot]) PUSH_SYSTEM(n, lit, norm_as_long_text(n, ws[slot]))
#define SYSTEM_TEXT(slot, lit) \
    if (ws[slot]) PUSH_SYSTEM(n, lit, norm_as_text(n, ws[slot]))
    SYSTEM_LONG(WS_OPCODE, "winlog.opcode");
    SYSTEM_LONG(WS_PID, "winlog.process.pid");
    SYSTEM_LONG(WS_TID, "winlog.process.thread.id");
    if (ws[WS_PROVIDER_GUID]) PUSH_SYSTEM(n, "winlog.provider_guid", norm_as_guid(n, ws[WS_PROVIDER_GUID]));
    if (provider) PUSH_SYSTEM(n, "winlog.provider_name", provider);
    SYSTEM_LONG(WS_RECORD_ID, "winlog.record_id");
    if (ws[WS_RELATED_ACTIVITY_ID])
        PUSH_SYSTEM(n, "winlog.related_activity_id", norm_as_guid(n, ws[WS_RELATED_ACTIVITY_ID]));
    SYSTEM_LONG(WS_TASK, "winlog.task");
    SYSTEM_TEXT(WS_USER_DOMAIN, "winlog.user.domain");
    SYSTEM_TEXT(WS_USER_ID, "winlog.user.identifier");
    SYSTEM_TEXT(WS_USER_NAME, "winlog.user.name");
    SYSTEM_TEXT(WS_USER_TYPE, "winlog.user.type");
    SYSTEM_LONG(WS_VERSION, "winlog.version");
#undef SYSTEM_LONG
#undef SYSTEM_TEXT
}

/* Every mapped field's path is an ecs_map row's: its keys and hash, computed once. */
#define ROW_KEYS_MAX 1024u
static struct entry row_keys[ROW_KEYS_MAX];
static pthread_once_t row_keys_once = PTHREAD_ONCE_INIT;

/* enrich_names' sources: which of them a row's path is (index + 1), 0 for none */
static const char *const enrich_pairs[][2] = {
    {"process.executable", "process.name"},
    {"process.parent.executable", "process.parent.name"},
    {"file.path", "file.name"},
};
static uint8_t row_enrich_source[ROW_KEYS_MAX];

static void row_keys_build(void)
{
    size_t count = ecs_map_count();
    MAMORI_ASSERT(count <= ROW_KEYS_MAX);
    for (size_t i = 0; i < count; i++) {
        const ecs_map_entry *row = ecs_map_at(i);
        norm_entry_set_path(&row_keys[i], row->ecs_path, ecs_map_path_len(row));
        for (size_t p = 0; p < MAMORI_ARRAY_LEN(enrich_pairs); p++)
            if (strcmp(row->ecs_path, enrich_pairs[p][0]) == 0) row_enrich_source[i] = (uint8_t)(p + 1);
    }
}

static const ecs_map_entry *map_lookup(const struct event_data *d, const struct logsource_set *ls, bool *exact)
{
    return memchr(d->name, '.', d->name_len) ? NULL : ecs_map_lookup(d->name, d->name_len, ls, exact);
}

static int map_event_data(normalizer *n, const struct logsource_set *ls)
{
    pthread_once(&row_keys_once, row_keys_build);
    struct nx_shape_slot *shape = n->nx_shape;
    if (shape && (!shape->ls_valid || shape->ls.categories != ls->categories || shape->ls.service != ls->service ||
                  shape->ls.product != ls->product)) {
        for (uint32_t i = 0; i < shape->member_count; i++) shape->members[i].ecs_row = NX_ECS_ROW_UNKNOWN;
        shape->ls = *ls;
        shape->ls_valid = true;
    }
    for (uint32_t i = 0; i < n->event_data_count; i++) {
        const struct event_data *d = &n->event_data[i];
        const json_value *v = norm_as_text(n, d->value);
        if (KEY_IS(d->name, d->name_len, "UtcTime")) n->ws[WS_UTC_TIME] = v;
        else if (KEY_IS(d->name, d->name_len, "Hashes") || KEY_IS(d->name, d->name_len, "Hash")) n->ws[WS_HASHES] = v;
        bool exact = true;
        const ecs_map_entry *row;
        size_t row_index = 0;
        if (shape && d->member >= 0) {
            struct nx_member_info *info = &shape->members[d->member];
            if (info->ecs_row == NX_ECS_ROW_UNKNOWN) {
                row = map_lookup(d, ls, &exact);
                info->ecs_row = row ? (uint16_t)ecs_map_index(row) : NX_ECS_ROW_NONE;
                info->ecs_exact = exact;
            }
            row = info->ecs_row == NX_ECS_ROW_NONE ? NULL : ecs_map_at(info->ecs_row);
            row_index = info->ecs_row;
            exact = info->ecs_exact;
        } else {
            row = map_lookup(d, ls, &exact);
            if (row) row_index = ecs_map_index(row);
        }
        if (row) {
            if (row->type == ECS_TYPE_LONG) v = norm_as_long(n, v);
            else if (row->type == ECS_TYPE_GUID) v = norm_as_guid(n, v);
            const struct entry *k = &row_keys[row_index];
            struct entry *e =
                norm_push_keyed(n, k->path, k->path_len, k->key0, k->key1, k->path_hash, k->in_event_data, v, KIND_MAPPED);
            e->src_name = d->name;
            e->src_len = d->name_len;
            e->prio = (uint32_t)row_index * 2u + (exact ? 0u : 1u);
            continue;
        }
        size_t len = EVENT_DATA_PREFIX_LEN + d->name_len;
        char *path = arena_alloc(n->arena, len + 1);
        memcpy(path, EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN);
        memcpy(path + EVENT_DATA_PREFIX_LEN, d->name, d->name_len);
        path[len] = '\0';
        norm_push_keyed(n, path, len, rank_word(d->name, d->name_len, 0), rank_word(d->name, d->name_len, 8),
                        event_path_hash(path, len), true, v, KIND_INPUT);
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
 * the value that will own the path after norm_settle(): a shipper's own ECS field, else the
 * best mapped EventData field. */
static inline void enrich_candidate(const struct entry **best, const struct entry *e)
{
    const struct entry *b = *best;
    if (!b || (b->kind == KIND_MAPPED && (e->kind == KIND_INPUT || e->prio < b->prio))) *best = e;
}

/* entries[system_begin, mapped_begin) are emit_system's (derived and weak: never sources);
 * from mapped_begin on map_event_data's: mapped rows, whose source is known by row, and
 * paths under winlog.event_data. (never sources). */
static void enrich_names(normalizer *n, uint32_t system_begin, uint32_t mapped_begin)
{
    static const uint32_t source_lens[] = {sizeof "process.executable" - 1, sizeof "process.parent.executable" - 1,
                                           sizeof "file.path" - 1};
    const struct entry *best[MAMORI_ARRAY_LEN(enrich_pairs)] = {NULL};
    for (uint32_t i = 0; i < system_begin; i++) {
        const struct entry *e = &n->entries[i];
        if (e->kind != KIND_MAPPED && e->kind != KIND_INPUT) continue;
        for (size_t p = 0; p < MAMORI_ARRAY_LEN(enrich_pairs); p++) {
            if (e->path_len != source_lens[p] || memcmp(e->path, enrich_pairs[p][0], source_lens[p]) != 0) continue;
            enrich_candidate(&best[p], e);
        }
    }
    for (uint32_t i = mapped_begin; i < n->entry_count; i++) {
        const struct entry *e = &n->entries[i];
        if (e->kind != KIND_MAPPED) continue;
        unsigned source = row_enrich_source[e->prio >> 1];
        if (source) enrich_candidate(&best[source - 1], e);
    }
    for (size_t p = 0; p < MAMORI_ARRAY_LEN(enrich_pairs); p++) {
        if (!best[p] || !json_is_string(best[p]->value)) continue;
        const json_value *v = best[p]->value;
        size_t start = v->len;
        while (start > 0 && v->str[start - 1] != '\\' && v->str[start - 1] != '/') start--;
        if (start == v->len) continue;
        push_static(n, enrich_pairs[p][1], new_string(n, v->str + start, v->len - start), KIND_WEAK);
    }
}

/* logsource_from_winlog through the per-thread cache (a linear search of its event table
 * per event otherwise). */
static void winlog_logsource(normalizer *n, const char *channel, size_t len, int64_t event_id,
                             struct logsource_set *ls, struct logsource_winlog_ecs *ecs)
{
    if (!channel || len == 0 || len > LS_CACHE_CHANNEL_MAX) {
        logsource_from_winlog(channel, len, event_id, ls, ecs);
        return;
    }
    size_t tail = MAMORI_MIN(len, 8);
    uint64_t h = ((uint64_t)event_id * 0x9E3779B97F4A7C15ULL) ^
                 (load_partial(channel + len - tail, tail, 0) * 0xff51afd7ed558ccdULL) ^ len;
    struct ls_cache_slot *slot = &n->ls_cache[(h >> 40) % LS_CACHE_SLOTS];
    if (slot->channel_len == len && slot->event_id == event_id && bytes_eq(slot->channel, channel, len)) {
        *ls = slot->ls;
        *ecs = slot->ecs;
        return;
    }
    logsource_from_winlog(channel, len, event_id, ls, ecs);
    slot->event_id = event_id;
    slot->channel_len = (uint32_t)len;
    memcpy(slot->channel, channel, len);
    slot->ls = *ls;
    slot->ecs = *ecs;
}

int norm_winlog_finish(normalizer *n)
{
    const json_value **ws = n->ws;
    int64_t event_id = -1;
    bool have_event_id = norm_value_int(ws[WS_EVENT_ID], &event_id);
    const json_value *channel = ws[WS_CHANNEL];
    struct logsource_set ls;
    struct logsource_winlog_ecs ecs;
    winlog_logsource(n, json_is_string(channel) ? channel->str : NULL, json_is_string(channel) ? channel->len : 0,
                     have_event_id ? event_id : -1, &ls, &ecs);
    uint32_t system_begin = n->entry_count;
    emit_system(n, &ls, &ecs, have_event_id, event_id);
    uint32_t mapped_begin = n->entry_count;
    int rc = map_event_data(n, &ls);
    if (rc) return rc;
    enrich_names(n, system_begin, mapped_begin);
    enrich_hashes(n, &ls);
    return 0;
}
