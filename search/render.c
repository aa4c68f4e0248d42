/* search/render.c — what leaves the search module as text: events with their
 * mamori.event_id spliced into the stored JSON (no re-serialization), join keys as "by"
 * objects, and opaque cursors bound to the query, range and tenant-independent position. */
#include "internal.h"

#include "core/event.h"

#include <errno.h>
#include <string.h>

/* ---- a minimal scanner over well-formed JSON text ---- */

static size_t skip_ws(const char *s, size_t len, size_t p)
{
    while (p < len && (s[p] == ' ' || s[p] == '\n' || s[p] == '\r' || s[p] == '\t')) p++;
    return p;
}

static size_t skip_string(const char *s, size_t len, size_t p)
{
    p++; /* opening quote */
    while (p < len && s[p] != '"') p += s[p] == '\\' ? 2 : 1;
    return p < len ? p + 1 : len;
}

static size_t skip_value(const char *s, size_t len, size_t p)
{
    p = skip_ws(s, len, p);
    if (p >= len) return len;
    if (s[p] == '"') return skip_string(s, len, p);
    if (s[p] == '{' || s[p] == '[') {
        int depth = 0;
        while (p < len) {
            char c = s[p];
            if (c == '"') {
                p = skip_string(s, len, p);
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return len;
    }
    while (p < len && s[p] != ',' && s[p] != '}' && s[p] != ']') p++;
    return p;
}

static int key_cmp(const char *s, size_t kstart, size_t kend, const char *k)
{
    /* kstart..kend covers the quoted key; canonical keys are plain here */
    size_t n = kend - kstart - 2, kl = strlen(k);
    int c = memcmp(s + kstart + 1, k, MAMORI_MIN(n, kl));
    if (c) return c;
    return n < kl ? -1 : n > kl;
}

/* Position in the object starting at `open` ('{') where a member named k belongs (before
 * the first greater key), and whether a member named k already exists there (*found =
 * its value start). */
static size_t member_slot(const char *s, size_t len, size_t open, const char *k, size_t *found, bool *first)
{
    size_t p = skip_ws(s, len, open + 1);
    *first = true;
    *found = 0;
    while (p < len && s[p] == '"') {
        size_t kend = skip_string(s, len, p);
        int c = key_cmp(s, p, kend, k);
        size_t colon = skip_ws(s, len, kend);
        size_t vstart = skip_ws(s, len, colon + 1);
        if (c == 0) {
            *found = vstart;
            return p;
        }
        if (c > 0) return p;
        *first = false;
        size_t vend = skip_value(s, len, vstart);
        p = skip_ws(s, len, vend);
        if (p < len && s[p] == ',') p = skip_ws(s, len, p + 1);
        else return p; /* at '}' */
    }
    return p;
}

void search_render_event(buf *out, const char *json, size_t len, const store_event_ref *ref)
{
    char id[EVENT_ID_HEX_CHARS + 1];
    event_id_format(ref->ts_us, ref->agent_hash, ref->seq, ref->index, id);
    size_t open = skip_ws(json, len, 0);
    if (open >= len || json[open] != '{') {
        buf_printf(out, "{\"mamori\":{\"event_id\":\"%s\"}}", id);
        return;
    }
    size_t found;
    bool first;
    size_t slot = member_slot(json, len, open, "mamori", &found, &first);
    if (found && json[found] == '{') {
        bool inner_first;
        size_t inner_found;
        size_t islot = member_slot(json, len, found, "event_id", &inner_found, &inner_first);
        if (inner_found) { /* already there (should not happen): keep the text as is */
            buf_append(out, json, len);
            return;
        }
        buf_append(out, json, islot);
        if (json[islot] == '}') buf_printf(out, "%s\"event_id\":\"%s\"", inner_first ? "" : ",", id);
        else buf_printf(out, "\"event_id\":\"%s\",", id);
        buf_append(out, json + islot, len - islot);
        return;
    }
    buf_append(out, json, slot);
    if (slot < len && json[slot] == '}') buf_printf(out, "%s\"mamori\":{\"event_id\":\"%s\"}", first ? "" : ",", id);
    else buf_printf(out, "\"mamori\":{\"event_id\":\"%s\"},", id);
    buf_append(out, json + slot, len - slot);
}

/* ---- join keys ---- */

bool key_build(const json_value *root, const field_ref *a, uint32_t na, const field_ref *b, uint32_t nb, buf *out)
{
    buf_clear(out);
    for (uint32_t i = 0; i < na + nb; i++) {
        const field_ref *f = i < na ? &a[i] : &b[i - na];
        const json_value *v = field_get(root, f);
        if (!v || v->type == JSON_NULL) return false;
        if (i) buf_putc(out, '\x1f');
        json_write_value(out, v);
    }
    return true;
}

void key_write_by(buf *out, const char *key, size_t key_len, const field_ref *a, uint32_t na, const field_ref *b,
                  uint32_t nb)
{
    buf_putc(out, '{');
    size_t p = 0;
    for (uint32_t i = 0; i < na + nb; i++) {
        const field_ref *f = i < na ? &a[i] : &b[i - na];
        const char *sep = p < key_len ? memchr(key + p, '\x1f', key_len - p) : NULL;
        size_t end = sep ? (size_t)(sep - key) : key_len;
        if (i) buf_putc(out, ',');
        json_write_string(out, f->path, f->path_len);
        buf_putc(out, ':');
        if (end > p) buf_append(out, key + p, end - p);
        else buf_puts(out, "null");
        p = end + 1;
    }
    buf_putc(out, '}');
}

/* ---- cursors ---- */

#define CURSOR_PAYLOAD 65u /* kind | ref (28) | remaining | offset | from | to | check (4) */

uint64_t request_hash(const search_query *q, int64_t from_us, int64_t to_us)
{
    (void)from_us;
    (void)to_us; /* the range travels inside the cursor */
    return q->text_hash;
}

static void cursor_payload(const cursor_state *c, uint8_t p[CURSOR_PAYLOAD])
{
    p[0] = c->kind;
    mamori_put_be64(p + 1, (uint64_t)c->after.ts_us);
    mamori_put_be64(p + 9, c->after.agent_hash);
    mamori_put_be64(p + 17, c->after.seq);
    mamori_put_be32(p + 25, c->after.index);
    mamori_put_be64(p + 29, c->remaining);
    mamori_put_be64(p + 37, c->offset);
    mamori_put_be64(p + 45, (uint64_t)c->from_us);
    mamori_put_be64(p + 53, (uint64_t)c->to_us);
}

static uint32_t cursor_check(const uint8_t p[CURSOR_PAYLOAD], uint64_t query_hash)
{
    uint8_t tmp[CURSOR_PAYLOAD + 8];
    memcpy(tmp, p, 61);
    mamori_put_be64(tmp + 61, query_hash);
    return (uint32_t)mamori_hash64(tmp, 69);
}

void cursor_encode(const cursor_state *c, uint64_t query_hash, char out[SEARCH_CURSOR_MAX_CHARS + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t p[CURSOR_PAYLOAD];
    cursor_payload(c, p);
    mamori_put_be32(p + 61, cursor_check(p, query_hash));
    out[0] = 'c';
    out[1] = '2';
    for (size_t i = 0; i < CURSOR_PAYLOAD; i++) {
        out[2 + 2 * i] = hex[p[i] >> 4];
        out[3 + 2 * i] = hex[p[i] & 15];
    }
    out[2 + 2 * CURSOR_PAYLOAD] = '\0';
}

static int cursor_bytes(const char *s, uint8_t p[CURSOR_PAYLOAD])
{
    if (!s || strlen(s) != 2 + 2 * CURSOR_PAYLOAD || s[0] != 'c' || s[1] != '2') return -EINVAL;
    for (size_t i = 0; i < CURSOR_PAYLOAD; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = s[2 + 2 * i + (size_t)k];
            int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : -1;
            if (d < 0) return -EINVAL;
            v = v * 16 + d;
        }
        p[i] = (uint8_t)v;
    }
    return 0;
}

int cursor_decode(const char *s, uint64_t query_hash, cursor_state *c)
{
    uint8_t p[CURSOR_PAYLOAD];
    if (cursor_bytes(s, p) != 0) return -EINVAL;
    if (mamori_get_be32(p + 61) != cursor_check(p, query_hash)) return -EINVAL;
    c->kind = p[0];
    if (c->kind < 1 || c->kind > 3) return -EINVAL;
    c->after.ts_us = (int64_t)mamori_get_be64(p + 1);
    c->after.agent_hash = mamori_get_be64(p + 9);
    c->after.seq = mamori_get_be64(p + 17);
    c->after.index = mamori_get_be32(p + 25);
    c->remaining = mamori_get_be64(p + 29);
    c->offset = mamori_get_be64(p + 37);
    c->from_us = (int64_t)mamori_get_be64(p + 45);
    c->to_us = (int64_t)mamori_get_be64(p + 53);
    return 0;
}

int search_cursor_range(const char *cursor, int64_t *from_us, int64_t *to_us)
{
    uint8_t p[CURSOR_PAYLOAD];
    if (cursor_bytes(cursor, p) != 0) return -EINVAL;
    *from_us = (int64_t)mamori_get_be64(p + 45);
    *to_us = (int64_t)mamori_get_be64(p + 53);
    return 0;
}
