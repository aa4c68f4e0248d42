/* core/normalize_ecs.c — the winlog side of the normalizer, second half: what
 * normalize_winlog.c collected from any of the three shapes (System fields in n->ws, EventData
 * entries) becomes ECS — System fields as winlog.* / event.* / host.* entries, EventData
 * through core/ecs_map for the event's logsource (unmapped names stay under
 * winlog.event_data.*), then process/file names and hashes enriched. */
#include "ecs_map.h"
#include "event.h"
#include "logsource.h"
#include "normalize_internal.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

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

/* event.category / event.type: an array of the source's strings, items copied from the
 * ones made when the source was looked up. */
static const json_value *string_list(normalizer *n, const json_value *items, uint32_t count)
{
    json_value *v = new_value(n, JSON_ARRAY);
    v->len = count;
    v->items = norm_alloc(n, count * sizeof(json_value));
    for (uint32_t k = 0; k < count; k++) v->items[k] = items[k]; /* at most 3: no memcpy call */
    return v;
}

static void string_items(const char *const *names, json_value *items, uint8_t *count)
{
    uint32_t k = 0;
    while (k < 3 && names[k]) {
        items[k] = (json_value){.type = JSON_STRING, .str = names[k], .len = (uint32_t)strlen(names[k])};
        k++;
    }
    *count = (uint8_t)k;
}

static inline void push_system(normalizer *n, const char *path, size_t len, uint64_t key0, uint64_t key1,
                               uint32_t hash, uint8_t flags, const json_value *v)
{
    if (v && v->type != JSON_OBJECT) norm_push_keyed(n, path, len, key0, key1, hash, false, flags, v, KIND_DERIVED);
}
#define PUSH_SYSTEM(n, lit, v)                                                                                    \
    push_system((n), lit, sizeof lit - 1, rank_word(lit, sizeof lit - 1, 0), rank_word(lit, sizeof lit - 1, 8), \
                event_path_hash(lit, sizeof lit - 1), norm_path_flags(lit, sizeof lit - 1), (v))

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
static void emit_system(normalizer *n, const struct winlog_source *source, bool have_event_id, int64_t event_id)
{
    const struct logsource_set *ls = &source->ls;
    const struct logsource_winlog_ecs *ecs = &source->ecs;
    const json_value **ws = n->ws;
    const json_value *provider = ws[WS_PROVIDER_NAME] && ws[WS_PROVIDER_NAME]->type != JSON_OBJECT ? ws[WS_PROVIDER_NAME] : NULL;
    const json_value *computer = ws[WS_COMPUTER] && ws[WS_COMPUTER]->type != JSON_OBJECT ? ws[WS_COMPUTER] : NULL;
    json_value *id = NULL;
    const json_value *code = NULL;
    if (have_event_id) {
        char *text = norm_alloc(n, 24);
        size_t len = norm_format_i64(event_id, text);
        id = new_value(n, JSON_NUMBER); /* an integer with its decimal text */
        id->flags = JSON_FLAG_INT;
        id->num.i = event_id;
        id->str = text;
        id->len = (uint32_t)len;
        code = new_string(n, text, len);
    }
    if (ecs->category[0])
        PUSH_LIT(n, "event.category", string_list(n, source->category_items, source->category_count), KIND_DERIVED);
    if (code) PUSH_LIT(n, "event.code", code, KIND_DERIVED);
    PUSH_LIT(n, "event.kind", &kind_event, KIND_DERIVED);
    if (ls->service) PUSH_LIT(n, "event.module", module_value(n, ls->service), KIND_DERIVED);
    if (provider) PUSH_SYSTEM(n, "event.provider", provider);
    if (ecs->type[0]) PUSH_LIT(n, "event.type", string_list(n, source->type_items, source->type_count), KIND_DERIVED);
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
    SYSTEM_LONG(WS_LEVEL, "winlog.level"); /* the number Sigma's `Level` means; log.level has its name */
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

/* enrich_hashes' algorithms and where each goes for a process and for a file */
static const char *const hash_algos[][3] = {
    {"MD5", "process.hash.md5", "file.hash.md5"},          {"SHA1", "process.hash.sha1", "file.hash.sha1"},
    {"SHA256", "process.hash.sha256", "file.hash.sha256"}, {"SHA384", "process.hash.sha384", "file.hash.sha384"},
    {"SHA512", "process.hash.sha512", "file.hash.sha512"}, {"IMPHASH", "process.pe.imphash", "file.pe.imphash"},
};
/* The enrichment's target paths with their keys, hash and flags, made once (as row_keys). */
static struct entry enrich_keys[MAMORI_ARRAY_LEN(enrich_pairs)];
static struct entry hash_keys[MAMORI_ARRAY_LEN(hash_algos)][2];

static inline void push_weak_keyed(normalizer *n, const struct entry *k, const json_value *v)
{
    norm_push_keyed(n, k->path, k->path_len, k->key0, k->key1, k->path_hash, k->in_event_data, k->flags, v, KIND_WEAK);
}

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
    for (size_t p = 0; p < MAMORI_ARRAY_LEN(enrich_pairs); p++)
        norm_entry_set_path(&enrich_keys[p], enrich_pairs[p][1], strlen(enrich_pairs[p][1]));
    for (size_t a = 0; a < MAMORI_ARRAY_LEN(hash_algos); a++)
        for (size_t c = 0; c < 2; c++) norm_entry_set_path(&hash_keys[a][c], hash_algos[a][c + 1], strlen(hash_algos[a][c + 1]));
}

static const ecs_map_entry *map_lookup(const struct event_data *d, const struct logsource_set *ls, bool *exact)
{
    return memchr(d->name, '.', d->name_len) ? NULL : ecs_map_lookup(d->name, d->name_len, ls, exact);
}

/* dst[0..len) = src[0..len): names are short, a libc call costs more than the copy. */
static inline void copy_short(char *dst, const char *src, size_t len)
{
    if (len < 8) {
        if (len >= 4) { /* two 4-byte copies, overlapping */
            memcpy(dst, src, 4);
            memcpy(dst + len - 4, src + len - 4, 4);
        } else if (len) { /* first, middle, last */
            dst[0] = src[0];
            dst[len / 2] = src[len / 2];
            dst[len - 1] = src[len - 1];
        }
        return;
    }
    for (size_t k = 0; k + 8 < len; k += 8) memcpy(dst + k, src + k, 8);
    memcpy(dst + len - 8, src + len - 8, 8); /* the last word, overlapping the one before */
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
                norm_push_keyed(n, k->path, k->path_len, k->key0, k->key1, k->path_hash, k->in_event_data, k->flags, v,
                                KIND_MAPPED);
            e->src_name = d->name;
            e->src_len = d->name_len;
            e->prio = (uint32_t)row_index * 2u + (exact ? 0u : 1u);
            continue;
        }
        size_t len = EVENT_DATA_PREFIX_LEN + d->name_len;
        char *path = norm_alloc(n, len + 1);
        memcpy(path, EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN);
        copy_short(path + EVENT_DATA_PREFIX_LEN, d->name, d->name_len);
        path[len] = '\0';
        uint64_t key0, key1;
        if (shape && d->member >= 0) {
            /* an NXLog name as sent, which holds no '.' (name_clean): its keys are its first 16
             * bytes as they are, from the words the shape keeps */
            const struct nx_member_info *info = &shape->members[d->member];
            key0 = __builtin_bswap64(info->head);
            key1 = d->name_len <= 8 ? 0
                   : d->name_len <= 16 ? __builtin_bswap64(info->tail >> (8 * (16 - d->name_len)))
                                       : __builtin_bswap64(load_partial(d->name + 8, 8, 0));
#ifndef NDEBUG
            MAMORI_ASSERT(key0 == rank_word(d->name, d->name_len, 0) && key1 == rank_word(d->name, d->name_len, 8));
#endif
        } else {
            key0 = rank_word(d->name, d->name_len, 0);
            key1 = rank_word(d->name, d->name_len, 8);
        }
        norm_push_keyed(n, path, len, key0, key1, event_path_hash(path, len), true, 0, v, KIND_INPUT);
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

/* dst[0..len) = src[0..len) with ASCII upper case lowered, 8 bytes at a time (a last word
 * overlapping the one before: lowering twice changes nothing). */
static void lower_copy(char *dst, const char *src, size_t len)
{
    if (len < 8) {
        for (size_t k = 0; k < len; k++) dst[k] = (char)ascii_lower((unsigned char)src[k]);
        return;
    }
    const uint64_t ones = 0x0101010101010101ULL, low7 = 0x7F7F7F7F7F7F7F7FULL, highs = 0x8080808080808080ULL;
    for (size_t k = 0;; k += 8) {
        if (k + 8 > len) k = len - 8;
        uint64_t w;
        memcpy(&w, src + k, 8);
        uint64_t b = w & low7; /* no carries between bytes below; the high bit is checked apart */
        uint64_t upper = (b + ones * (0x80u - 'A')) & ~(b + ones * (0x7fu - 'Z')) & ~w & highs;
        w |= upper >> 2; /* 0x80 >> 2 = 0x20 */
        memcpy(dst + k, &w, 8);
        if (k + 8 == len) return;
    }
}

/* "SHA1=…,MD5=…,SHA256=…,IMPHASH=…" → <owner>.hash.sha1 … and <owner>.pe.imphash, lowercase. */
static void enrich_hashes(normalizer *n, const struct logsource_set *ls)
{
    const json_value *h = n->ws[WS_HASHES];
    const char *owner = hash_owner(ls);
    if (!owner || !json_is_string(h)) return;
    int column = owner[0] == 'p' ? 1 : 2;
    /* Each algorithm once: norm_settle would keep the first of equal weak paths anyway, and a
     * Hashes value of thousands of items must not push thousands of entries (ENTRY_CAP). */
    unsigned seen = 0;
    _Static_assert(MAMORI_ARRAY_LEN(hash_algos) <= 8 * sizeof seen, "one bit per algorithm");
    const char *s = h->str, *end = h->str + h->len;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        const char *eq = memchr(s, '=', (size_t)(item_end - s));
        if (eq && eq + 1 < item_end) {
            size_t alg_len = (size_t)(eq - s), value_len = (size_t)(item_end - eq - 1);
            for (size_t a = 0; a < MAMORI_ARRAY_LEN(hash_algos); a++) {
                if (strlen(hash_algos[a][0]) != alg_len || strncasecmp(hash_algos[a][0], s, alg_len) != 0) continue;
                if (seen & 1u << a) break;
                seen |= 1u << a;
                char *lower = norm_alloc(n, value_len + 1);
                lower_copy(lower, eq + 1, value_len);
                lower[value_len] = '\0';
                push_weak_keyed(n, &hash_keys[a][column - 1], new_string(n, lower, value_len));
                break;
            }
        }
        s = item_end + 1;
    }
}

/* The position after the last '\\' or '/' of s[0..len), or 0: whole words from the end
 * (exact per-byte matches, so the highest one is the last separator), then bytes. */
static size_t after_last_separator(const char *s, size_t len)
{
    const uint64_t ones = 0x0101010101010101ULL, low7 = 0x7F7F7F7F7F7F7F7FULL;
    size_t end = len;
    for (; end >= 8; end -= 8) {
        uint64_t w, hits = 0;
        memcpy(&w, s + end - 8, 8);
        const uint64_t seps[2] = {ones * '\\', ones * '/'};
        for (int k = 0; k < 2; k++) {
            uint64_t t = w ^ seps[k]; /* zero where the byte is the separator */
            hits |= ~(((t & low7) + low7) | t | low7);
        }
        if (hits) return end - 8 + (size_t)(63 - __builtin_clzll(hits)) / 8 + 1;
    }
    while (end > 0 && s[end - 1] != '\\' && s[end - 1] != '/') end--;
    return end;
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
        size_t start = after_last_separator(v->str, v->len);
        if (start == v->len) continue;
        push_weak_keyed(n, &enrich_keys[p], new_string(n, v->str + start, v->len - start));
    }
}

static void source_fill(const char *channel, size_t len, int64_t event_id, struct winlog_source *source)
{
    logsource_from_winlog(channel, len, event_id, &source->ls, &source->ecs);
    string_items(source->ecs.category, source->category_items, &source->category_count);
    string_items(source->ecs.type, source->type_items, &source->type_count);
}

/* logsource_from_winlog through the per-thread cache (a linear search of its event table
 * per event otherwise); *local holds the answer when it is not cached. */
static const struct winlog_source *winlog_logsource(normalizer *n, const char *channel, size_t len, int64_t event_id,
                                                    struct winlog_source *local)
{
    if (!channel || len == 0 || len > LS_CACHE_CHANNEL_MAX) {
        source_fill(channel, len, event_id, local);
        return local;
    }
    size_t tail = MAMORI_MIN(len, 8);
    uint64_t h = ((uint64_t)event_id * 0x9E3779B97F4A7C15ULL) ^
                 (load_partial(channel + len - tail, tail, 0) * 0xff51afd7ed558ccdULL) ^ len;
    struct ls_cache_slot *slot = &n->ls_cache[(h >> 40) % LS_CACHE_SLOTS];
    if (slot->channel_len == len && slot->event_id == event_id && bytes_eq(slot->channel, channel, len))
        return &slot->source;
    source_fill(channel, len, event_id, &slot->source);
    slot->event_id = event_id;
    slot->channel_len = (uint32_t)len;
    memcpy(slot->channel, channel, len);
    return &slot->source;
}

int norm_winlog_finish(normalizer *n)
{
    const json_value **ws = n->ws;
    int64_t event_id = -1;
    bool have_event_id = norm_value_int(ws[WS_EVENT_ID], &event_id);
    const json_value *channel = ws[WS_CHANNEL];
    struct winlog_source local;
    const struct winlog_source *source =
        winlog_logsource(n, json_is_string(channel) ? channel->str : NULL, json_is_string(channel) ? channel->len : 0,
                         have_event_id ? event_id : -1, &local);
    /* the slot may be refilled by a later event; this one's answer is copied (ls) or used now */
    const struct logsource_set ls = source->ls;
    uint32_t system_begin = n->entry_count;
    emit_system(n, source, have_event_id, event_id);
    uint32_t mapped_begin = n->entry_count;
    int rc = map_event_data(n, &ls);
    if (rc) return rc;
    enrich_names(n, system_begin, mapped_begin);
    enrich_hashes(n, &ls);
    return 0;
}
