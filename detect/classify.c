/* detect/classify.c — which rules' logsources an event belongs to, for the batch walk
 * (scan.c): winlog events by channel and event id, ECS ones by the fields logsource_from_ecs
 * reads; both remembered per worker (struct ls_cache_entry), the fields looked for first where
 * events of the same shape had them. */
#include "internal.h"

#include <string.h>

/* The winlog event id as logsource_classify reads it: an integer, or a string of at most 18
 * digits; -1 otherwise. */
static int64_t winlog_event_id(const event_field *f)
{
    if (!f) return -1;
    const char *s;
    uint32_t len;
    if (f->path_hash && f->type == JSON_STRING) { /* the text, without loading the value */
        s = f->text;
        len = f->text_len;
    } else {
        const json_value *v = f->value;
        if (v->type == JSON_NUMBER && (v->flags & JSON_FLAG_INT)) return v->num.i;
        if (v->type != JSON_STRING) return -1;
        s = v->str;
        len = v->len;
    }
    if (len == 0 || len > 18) return -1;
    int64_t n = 0;
    for (uint32_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        n = n * 10 + (s[i] - '0');
    }
    return n;
}

/* Whether field i of ev is `path` (len bytes, event_path_hash `hash`). */
static inline bool field_is(const mamori_event *ev, uint32_t i, const char *path, uint32_t len, uint32_t hash)
{
    if (i >= ev->field_count) return false;
    const event_field *f = &ev->fields[i];
    return (!f->path_hash || f->path_hash == hash) && f->path_len == len && path_equal(f->path, path, len);
}

/* Bytewise order of field f's path against path (as core/event.c sorts fields). */
static inline int field_order(const event_field *f, const char *path, uint32_t len)
{
    return event_path_cmp(f->path, f->path_len, path, len);
}

/* The index of field `path` in ev, or UINT32_MAX. *hint is where the last event asked had it,
 * or where it would have sorted: events of a stream are shaped alike, so a hit, or an absence
 * (its neighbours' order), is usually confirmed there; else a binary search (the fields are
 * sorted by path, each path once: core/event.h). */
static uint32_t field_find(const mamori_event *ev, uint32_t *hint, const char *path, uint32_t len, uint32_t hash)
{
    uint32_t n = ev->field_count, at = *hint;
    if (at < n && field_is(ev, at, path, len, hash)) return at;
    if (at <= n && (at == n || field_order(&ev->fields[at], path, len) > 0) &&
        (at == 0 || field_order(&ev->fields[at - 1], path, len) < 0))
        return UINT32_MAX;
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = field_order(&ev->fields[mid], path, len);
        if (c == 0) return *hint = mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *hint = lo;
    return UINT32_MAX;
}

/* The fields winlog.channel and winlog.event_id (NULL when absent): where the last event with
 * as many fields modulo 32 had them (events of a kind are shaped alike; kinds interleave in a
 * stream: one place remembered for all missed for 38% of the OTRF events, these 32 for 5%),
 * else found by path hash from the end of the field array (fields are sorted by path and
 * winlog.* sorts last; the path bytes are read to verify a hit only) — unless the last field
 * sorts before winlog.channel: an ECS event. */
static void find_winlog(detect_worker *w, const mamori_event *ev, const event_field **channel,
                        const event_field **event_id)
{
    const uint32_t channel_hash = event_path_hash("winlog.channel", 14); /* constants once inlined */
    const uint32_t event_id_hash = event_path_hash("winlog.event_id", 15);
    uint32_t slot = ev->field_count % (uint32_t)MAMORI_ARRAY_LEN(w->channel_at);
    uint32_t *channel_at = &w->channel_at[slot], *event_id_at = &w->event_id_at[slot];
    if (field_is(ev, *channel_at, "winlog.channel", 14, channel_hash) &&
        field_is(ev, *event_id_at, "winlog.event_id", 15, event_id_hash)) {
        *channel = &ev->fields[*channel_at];
        *event_id = &ev->fields[*event_id_at];
        return;
    }
    *channel = *event_id = NULL;
    uint32_t n = ev->field_count;
    if (n == 0 || field_order(&ev->fields[n - 1], "winlog.channel", 14) < 0) return;
    for (uint32_t i = n; i-- > 0 && !(*channel && *event_id);) {
        const event_field *f = &ev->fields[i];
        if (f->path_hash && f->path_hash != channel_hash && f->path_hash != event_id_hash) continue;
        if (f->path_len == 14 && memcmp(f->path, "winlog.channel", 14) == 0) {
            *channel = f;
            *channel_at = i;
        } else if (f->path_len == 15 && memcmp(f->path, "winlog.event_id", 15) == 0) {
            *event_id = f;
            *event_id_at = i;
        }
    }
}

static uint64_t ls_slot_hash(const char *key, uint32_t len, int64_t id)
{
    uint64_t h = ((uint64_t)len * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)id * 0xff51afd7ed558ccdull);
    if (len) h ^= (uint64_t)(uint8_t)key[len - 1] << 8 | (uint8_t)key[len / 2];
    return h * 0xc4ceb9fe1a85ec53ull;
}

/* Appends a string or an array of strings to an ECS classification key, unambiguously (kind,
 * count, lengths); false when it is anything else or the key is full. */
static bool ecs_key_add(char *key, uint32_t *len, const json_value *v)
{
    char *k = key + *len;
    const char *end = key + LS_CACHE_CHANNEL_MAX;
    if (!v) {
        if (k == end) return false;
        *k++ = 'N';
    } else if (v->type == JSON_STRING) {
        if (v->len > 255 || end - k < (ptrdiff_t)v->len + 2) return false;
        *k++ = 'S';
        *k++ = (char)v->len;
        memcpy(k, v->str, v->len);
        k += v->len;
    } else if (v->type == JSON_ARRAY && v->len <= 255) {
        if (end - k < 2) return false;
        *k++ = 'A';
        *k++ = (char)v->len;
        for (uint32_t i = 0; i < v->len; i++) {
            const json_value *it = &v->items[i];
            if (it->type != JSON_STRING || it->len > 255 || end - k < (ptrdiff_t)it->len + 1) return false;
            *k++ = (char)it->len;
            memcpy(k, it->str, it->len);
            k += it->len;
        }
    } else {
        return false;
    }
    *len = (uint32_t)(k - key);
    return true;
}

static inline const json_value *ecs_in(detect_worker *w, const mamori_event *ev, int k, const char *path,
                                       uint32_t len)
{
    uint32_t i = field_find(ev, &w->ecs_at[k], path, len, event_path_hash(path, len));
    return i == UINT32_MAX ? NULL : ev->fields[i].value;
}

/* An ECS event's classification (logsource_from_ecs), remembered per worker by what it reads:
 * event.category, event.type, host.os.type and whether dns.question.name is there. */
static void classify_ecs(detect_worker *w, const mamori_event *ev, struct logsource_set *out)
{
    const json_value *category = ecs_in(w, ev, 0, "event.category", 14);
    const json_value *type = ecs_in(w, ev, 1, "event.type", 10);
    const json_value *os = ecs_in(w, ev, 2, "host.os.type", 12);
    const json_value *dns = ecs_in(w, ev, 3, "dns.question.name", 17);
    char key[LS_CACHE_CHANNEL_MAX];
    uint32_t len = 0;
    if (!ecs_key_add(key, &len, category) || !ecs_key_add(key, &len, type) || !ecs_key_add(key, &len, os)) {
        logsource_from_ecs(category, type, os, dns != NULL, out);
        return;
    }
    int64_t id = dns ? -3 : -2; /* winlog entries hold event ids >= -1 */
    struct ls_cache_entry *c = &w->ls_cache[(ls_slot_hash(key, len, id) >> 40) % LS_CACHE_SLOTS];
    if (c->len == len + 1 && c->event_id == id && memcmp(c->channel, key, len) == 0) {
        *out = c->ls;
        return;
    }
    logsource_from_ecs(category, type, os, dns != NULL, out);
    c->len = len + 1;
    c->event_id = id;
    memcpy(c->channel, key, len);
    c->ls = *out;
}

/* logsource_classify, with classifications remembered per worker: winlog ones by (channel,
 * event id), ECS ones by the fields they read. */
void classify(detect_worker *w, const mamori_event *ev, uint32_t e)
{
    const event_field *channel_field, *event_id_field;
    find_winlog(w, ev, &channel_field, &event_id_field);
    w->batch_winlog[e] = channel_field != NULL;
    if (!channel_field) {
        classify_ecs(w, ev, &w->batch_ls[e]);
        return;
    }
    const char *channel = NULL;
    uint32_t len = 0;
    if (channel_field->path_hash) {
        if (channel_field->type == JSON_STRING) channel = channel_field->text, len = channel_field->text_len;
    } else if (channel_field->value->type == JSON_STRING) {
        channel = channel_field->value->str, len = channel_field->value->len;
    }
    if (!channel || len > LS_CACHE_CHANNEL_MAX) {
        logsource_classify(ev, &w->batch_ls[e]);
        return;
    }
    int64_t id = winlog_event_id(event_id_field);
    struct ls_cache_entry *c = &w->ls_cache[(ls_slot_hash(channel, len, id) >> 40) % LS_CACHE_SLOTS];
    if (c->len == len + 1 && c->event_id == id && memcmp(c->channel, channel, len) == 0) {
        w->batch_ls[e] = c->ls;
        return;
    }
    logsource_from_winlog(channel, len, id, &w->batch_ls[e], NULL);
    c->len = len + 1;
    c->event_id = id;
    memcpy(c->channel, channel, len);
    c->ls = w->batch_ls[e];
}
