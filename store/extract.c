/* store/extract.c — which ECS fields are indexed, and their values in one event: from the
 * normalized field list on the write path, from the stored canonical JSON on recovery.
 * Both must yield the same values (tests/unit/store/test_index.c checks they agree). */
#include "internal.h"

#include <string.h>

static const char *const field_paths[STORE_IX_FIELD_COUNT_PLUS_ONE] = {
    [STORE_IX_HOST_ID] = "host.id",
    [STORE_IX_HOST_NAME] = "host.name",
    [STORE_IX_USER_NAME] = "user.name",
    [STORE_IX_PROCESS_ENTITY_ID] = "process.entity_id",
    [STORE_IX_PROCESS_PARENT_ENTITY_ID] = "process.parent.entity_id",
    [STORE_IX_PROCESS_NAME] = "process.name",
    [STORE_IX_PROCESS_EXECUTABLE] = "process.executable",
    [STORE_IX_PROCESS_HASH] = "process.hash.*",
    [STORE_IX_SOURCE_IP] = "source.ip",
    [STORE_IX_DESTINATION_IP] = "destination.ip",
    [STORE_IX_DNS_QUESTION_NAME] = "dns.question.name",
    [STORE_IX_FILE_PATH] = "file.path",
    [STORE_IX_EVENT_CATEGORY] = "event.category",
};

#define HASH_PREFIX "process.hash."
#define HASH_PREFIX_LEN (sizeof HASH_PREFIX - 1)

const char *store_index_field_name(enum store_index_field f)
{
    if ((int)f <= 0 || f >= STORE_IX_FIELD_COUNT_PLUS_ONE) return NULL;
    return field_paths[f];
}

static inline bool path_is(const char *path, size_t len, const char *want, size_t want_len)
{
    return len == want_len && memcmp(path, want, len) == 0;
}
#define PATH_IS(lit) path_is(path, len, lit, sizeof lit - 1)

/* Called for every field of every event written: a switch on the first byte keeps it to
 * one or two comparisons for the (many) fields that are not indexed. */
enum store_index_field store_index_field_for_path(const char *path, size_t len)
{
    if (len < 7) return 0;
    switch (path[0]) {
    case 'd':
        if (PATH_IS("destination.ip")) return STORE_IX_DESTINATION_IP;
        if (PATH_IS("dns.question.name")) return STORE_IX_DNS_QUESTION_NAME;
        return 0;
    case 'e':
        return PATH_IS("event.category") ? STORE_IX_EVENT_CATEGORY : 0;
    case 'f':
        return PATH_IS("file.path") ? STORE_IX_FILE_PATH : 0;
    case 'h':
        if (PATH_IS("host.id")) return STORE_IX_HOST_ID;
        if (PATH_IS("host.name")) return STORE_IX_HOST_NAME;
        return 0;
    case 'p':
        if (len < 12 || memcmp(path, "process.", 8) != 0) return 0;
        switch (path[8]) {
        case 'e':
            if (PATH_IS("process.entity_id")) return STORE_IX_PROCESS_ENTITY_ID;
            if (PATH_IS("process.executable")) return STORE_IX_PROCESS_EXECUTABLE;
            return 0;
        case 'h':
            if (len > HASH_PREFIX_LEN && memcmp(path, HASH_PREFIX, HASH_PREFIX_LEN) == 0 &&
                memchr(path + HASH_PREFIX_LEN, '.', len - HASH_PREFIX_LEN) == NULL)
                return STORE_IX_PROCESS_HASH;
            return 0;
        case 'n':
            return PATH_IS("process.name") ? STORE_IX_PROCESS_NAME : 0;
        case 'p':
            return PATH_IS("process.parent.entity_id") ? STORE_IX_PROCESS_PARENT_ENTITY_ID : 0;
        default:
            return 0;
        }
    case 's':
        return PATH_IS("source.ip") ? STORE_IX_SOURCE_IP : 0;
    case 'u':
        return PATH_IS("user.name") ? STORE_IX_USER_NAME : 0;
    default:
        return 0;
    }
}

/* Strings and numbers are indexed (numbers by their JSON text); arrays element by element;
 * booleans, nulls and objects are not. */
static void emit_value(enum store_index_field f, const json_value *v, ix_value_fn fn, void *ctx)
{
    switch (v->type) {
    case JSON_STRING:
    case JSON_NUMBER:
        fn(ctx, f, v->str, v->len);
        return;
    case JSON_ARRAY:
        for (uint32_t i = 0; i < v->len; i++) {
            const json_value *item = &v->items[i];
            if (item->type == JSON_STRING || item->type == JSON_NUMBER) fn(ctx, f, item->str, item->len);
        }
        return;
    default:
        return;
    }
}

void ix_extract_event(const mamori_event *ev, ix_value_fn fn, void *ctx)
{
    for (uint32_t i = 0; i < ev->field_count; i++) {
        const event_field *fld = &ev->fields[i];
        enum store_index_field f = store_index_field_for_path(fld->path, fld->path_len);
        if (f && fld->value) emit_value(f, fld->value, fn, ctx);
    }
}

/* Follows a dotted path through nested objects. */
static const json_value *json_path(const json_value *v, const char *path)
{
    while (v && v->type == JSON_OBJECT) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        v = json_object_get(v, path, n);
        if (!dot) return v;
        path = dot + 1;
    }
    return NULL;
}

void ix_extract_json(const json_value *root, ix_value_fn fn, void *ctx)
{
    for (int f = 1; f < STORE_IX_FIELD_COUNT_PLUS_ONE; f++) {
        if (f == STORE_IX_PROCESS_HASH) {
            const json_value *hashes = json_path(root, "process.hash");
            if (!hashes || hashes->type != JSON_OBJECT) continue;
            for (uint32_t i = 0; i < hashes->len; i++) {
                const json_member *m = &hashes->members[i];
                if (m->key_len == 0 || memchr(m->key, '.', m->key_len)) continue;
                emit_value(STORE_IX_PROCESS_HASH, &m->value, fn, ctx);
            }
            continue;
        }
        const json_value *v = json_path(root, field_paths[f]);
        if (v) emit_value((enum store_index_field)f, v, fn, ctx);
    }
}
