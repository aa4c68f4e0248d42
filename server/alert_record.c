/* server/alert_record.c — what an alert says: its deterministic id, the filter hashes the
 * store indexes, and the immutable JSON body — when and where (tenant, agent, host), which
 * rule (id, title, level, tags, ATT&CK ids), and the triggering event's id with a copy of its
 * key fields (process, user, file, network, registry, …) in ECS shape, bounded in size. */
#include "detect_internal.h"

#include <string.h>

#include "core/clock.h"

/* Paths copied from the event: exact names, or prefixes ending in '.'. */
static const char *const key_fields[] = {
    "@timestamp", "destination.", "dll.", "dns.", "event.action", "event.category", "event.code", "event.kind",
    "event.outcome", "event.provider", "event.type", "file.", "group.", "network.", "process.", "registry.",
    "service.", "source.", "url.", "user.", "winlog.channel", "winlog.computer_name", "winlog.event_data.",
    "winlog.provider_name", "winlog.record_id",
};

static bool is_key_field(const char *path, uint32_t len)
{
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(key_fields); i++) {
        size_t n = strlen(key_fields[i]);
        if (key_fields[i][n - 1] == '.' ? (len > n && memcmp(path, key_fields[i], n) == 0)
                                        : (len == n && memcmp(path, key_fields[i], n) == 0))
            return true;
    }
    return false;
}

/* Writes path-sorted dotted fields as nested objects: the open objects are the segments the
 * previous path shares with the next one. */
#define NEST_MAX 16

typedef struct nest {
    buf *out;
    const char *prev; /* previous path written (its storage outlives the writer) */
    uint32_t prev_len;
    uint32_t seg_end[NEST_MAX]; /* end offset in prev of each open object's segment */
    uint32_t open;
    bool first[NEST_MAX + 1]; /* no member yet at this depth */
} nest;

static uint32_t segments(const char *p, uint32_t len, uint32_t ends[NEST_MAX + 1])
{
    uint32_t n = 0;
    for (uint32_t i = 0; i <= len; i++)
        if (i == len || p[i] == '.') {
            if (n == NEST_MAX + 1) return UINT32_MAX;
            ends[n++] = i;
        }
    return n;
}

static void nest_key(nest *w, uint32_t depth, const char *k, size_t len)
{
    if (!w->first[depth]) buf_putc(w->out, ',');
    w->first[depth] = false;
    json_write_string(w->out, k, len);
    buf_putc(w->out, ':');
}

/* Adds one field; false when it was skipped (too deep, or under a path written as a value). */
static bool nest_add(nest *w, const char *path, uint32_t len, const json_value *v)
{
    uint32_t ends[NEST_MAX + 1];
    uint32_t n = segments(path, len, ends);
    if (n == UINT32_MAX) return false;
    if (w->prev && len > w->prev_len && path[w->prev_len] == '.' && memcmp(path, w->prev, w->prev_len) == 0)
        return false; /* "a.b" was a value: "a.b.c" cannot be an object member of it */
    /* objects still open that this path shares */
    uint32_t keep = 0;
    while (keep < w->open && keep + 1 < n && ends[keep] == w->seg_end[keep] &&
           memcmp(path, w->prev, ends[keep]) == 0)
        keep++;
    for (; w->open > keep; w->open--) buf_putc(w->out, '}');
    for (uint32_t d = keep; d + 1 < n; d++) {
        uint32_t start = d ? ends[d - 1] + 1 : 0;
        nest_key(w, d, path + start, ends[d] - start);
        buf_putc(w->out, '{');
        w->seg_end[d] = ends[d];
        w->first[d + 1] = true;
        w->open = d + 1;
    }
    uint32_t start = n > 1 ? ends[n - 2] + 1 : 0;
    nest_key(w, n - 1, path + start, len - start);
    json_write_value(w->out, v);
    w->prev = path;
    w->prev_len = len;
    return true;
}

static void nest_close(nest *w)
{
    for (; w->open > 0; w->open--) buf_putc(w->out, '}');
}

static void write_str_or_null(buf *out, const char *s, size_t len)
{
    if (s) json_write_string(out, s, len);
    else buf_puts(out, "null");
}

void alert_body_head(buf *b, int64_t time_us, int64_t received_us, const char *tenant, const char *agent_id,
                     const char *host_id, size_t host_id_len, const char *host_name, size_t host_name_len,
                     const detect_rule *rule)
{
    char t[32], r[32];
    clock_format_rfc3339(time_us, t);
    clock_format_rfc3339(received_us, r);
    buf_printf(b, "{\"time\":\"%s\",\"received\":\"%s\",\"tenant\":", t, r);
    json_write_string(b, tenant, strlen(tenant));
    buf_puts(b, ",\"agent_id\":");
    json_write_string(b, agent_id, strlen(agent_id));
    buf_puts(b, ",\"host\":{\"id\":");
    write_str_or_null(b, host_id, host_id_len);
    buf_puts(b, ",\"name\":");
    write_str_or_null(b, host_name, host_name_len);
    buf_puts(b, "},\"rule\":");
    detect_rule_write_json(b, rule);
}

static uint64_t hash_of(const json_value *v)
{
    return json_is_string(v) && v->len ? store_alert_term_hash(v->str, v->len) : 0;
}

void alert_record_build(const alert_source *src, store_alert *a, uint32_t *body_offset, buf *bodies)
{
    const mamori_event *ev = src->ev;
    const detect_rule *rule = src->rule;
    const char *rule_key = rule->id[0] ? rule->id : rule->title;
    memset(a, 0, sizeof *a);
    a->tenant_hash = src->tenant_hash;
    a->tenant = src->tenant;
    if (rule->id[0]) {
        store_alert_id(a->id, src->tenant_hash, src->agent_hash, src->seq, ev->index, rule_key, strlen(rule_key));
    } else {
        /* a rule without an id is named by its title, file name and line, so two id-less rules
         * of one title matching one event give two alerts, not one */
        const char *base = rule->file ? strrchr(rule->file, '/') : NULL;
        base = base ? base + 1 : rule->file ? rule->file : "";
        buf k;
        buf_init(&k);
        buf_append(&k, rule->title, strlen(rule->title) + 1);
        buf_append(&k, base, strlen(base) + 1);
        buf_printf(&k, "%u", rule->line);
        store_alert_id(a->id, src->tenant_hash, src->agent_hash, src->seq, ev->index, k.data, k.len);
        buf_fini(&k);
    }
    a->ts_us = src->ts_us;
    a->created_us = a->updated_us = src->now_us;
    a->level = (uint8_t)rule->level;
    a->status = STORE_ALERT_NEW;
    a->rule_hash = store_alert_term_hash(rule_key, strlen(rule_key)); /* its id, or its title when it has none */
    const json_value *host_id = event_get_cstr(ev, "host.id"), *host_name = event_get_cstr(ev, "host.name");
    a->host_id_hash = hash_of(host_id);
    a->host_name_hash = hash_of(host_name);
    a->assignee = "";

    size_t start = bodies->len;
    *body_offset = (uint32_t)start;
    char eid[EVENT_ID_HEX_CHARS + 1];
    event_id_format(src->ts_us, src->agent_hash, src->seq, ev->index, eid);
    /* a JSON string (even "") is a string; anything else is null */
    const char *hid = json_is_string(host_id) ? (host_id->str ? host_id->str : "") : NULL;
    const char *hname = json_is_string(host_name) ? (host_name->str ? host_name->str : "") : NULL;
    alert_body_head(bodies, src->ts_us, src->received_us, src->tenant, src->agent_id, hid, hid ? host_id->len : 0,
                    hname, hname ? host_name->len : 0, rule);
    buf_printf(bodies, ",\"event\":{\"id\":\"%s\",\"seq\":%llu,\"index\":%u", eid, (unsigned long long)src->seq,
               ev->index);
    /* key fields, in path order, while the body stays under its bound */
    nest w = {.out = bodies, .first = {[0] = false}};
    for (uint32_t i = 0; i < ev->field_count; i++) {
        const event_field *f = &ev->fields[i];
        if (!is_key_field(f->path, f->path_len)) continue;
        size_t before = bodies->len;
        uint32_t open_before = w.open;
        const char *prev_before = w.prev;
        uint32_t prev_len_before = w.prev_len;
        bool first_before[NEST_MAX + 1];
        memcpy(first_before, w.first, sizeof first_before);
        uint32_t seg_before[NEST_MAX];
        memcpy(seg_before, w.seg_end, sizeof seg_before);
        if (!nest_add(&w, f->path, f->path_len, f->value)) continue;
        if (bodies->len - start + w.open + 8 > ALERT_BODY_MAX_BYTES) {
            /* over the bound: undo this field (closing what it opened comes later) */
            bodies->len = before;
            w.open = open_before;
            w.prev = prev_before;
            w.prev_len = prev_len_before;
            memcpy(w.first, first_before, sizeof first_before);
            memcpy(w.seg_end, seg_before, sizeof seg_before);
        }
    }
    nest_close(&w);
    buf_puts(bodies, "}}");
    a->body_len = (uint32_t)(bodies->len - start);
}
