/* api/alerts.c — GET /v1/alerts (filters, newest first, cursor paging), GET and PATCH
 * /v1/alerts/{id} (status, assignee; audited). The tenant is always the key's: an alert of
 * another tenant is "not found". The store keeps the immutable part of an alert as one JSON
 * object; this file puts the id and the mutable fields in front of it. */
#include "internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "detect/detect.h"

#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALERTS_DEFAULT_LIMIT 100u
#define ALERTS_PAGE_MAX_BYTES (16u << 20) /* a page ends early (with a cursor) past this */
#define CURSOR_PREFIX "a1"
#define CURSOR_CHARS (2u + 16u + STORE_ALERT_ID_HEX_CHARS)

static const char *const level_names[] = {
    [DETECT_LEVEL_INFORMATIONAL] = "informational", [DETECT_LEVEL_LOW] = "low",   [DETECT_LEVEL_MEDIUM] = "medium",
    [DETECT_LEVEL_HIGH] = "high",                   [DETECT_LEVEL_CRITICAL] = "critical",
};

static int level_parse(const char *s)
{
    if (!strcmp(s, "none")) return DETECT_LEVEL_NONE; /* rules without a (known) level */
    for (int i = DETECT_LEVEL_INFORMATIONAL; i <= DETECT_LEVEL_CRITICAL; i++)
        if (!strcmp(s, level_names[i])) return i;
    return -1;
}

/* {"id","status","assignee","created","updated", …the stored body's members…} */
static void render_alert(buf *out, const store_alert *a)
{
    char id[STORE_ALERT_ID_HEX_CHARS + 1], created[32], updated[32];
    store_alert_id_format(a->id, id);
    clock_format_rfc3339(a->created_us, created);
    clock_format_rfc3339(a->updated_us, updated);
    buf_printf(out, "{\"id\":\"%s\",\"status\":\"%s\",\"assignee\":", id,
               store_alert_status_name((enum store_alert_status)a->status));
    if (a->assignee_len) json_write_string(out, a->assignee, a->assignee_len);
    else buf_puts(out, "null");
    buf_printf(out, ",\"created\":\"%s\",\"updated\":\"%s\"", created, updated);
    if (a->body_len > 2) {
        buf_putc(out, ',');
        buf_append(out, a->body + 1, a->body_len - 1); /* its members and closing brace */
    } else {
        buf_putc(out, '}');
    }
}

static void cursor_format(char out[CURSOR_CHARS + 1], int64_t ts, const uint8_t id[STORE_ALERT_ID_BYTES])
{
    char hex[STORE_ALERT_ID_HEX_CHARS + 1];
    store_alert_id_format(id, hex);
    snprintf(out, CURSOR_CHARS + 1, CURSOR_PREFIX "%016llx%s", (unsigned long long)((uint64_t)ts ^ (1ULL << 63)), hex);
}

static int cursor_parse(const char *s, int64_t *ts, uint8_t id[STORE_ALERT_ID_BYTES])
{
    if (strlen(s) != CURSOR_CHARS || strncmp(s, CURSOR_PREFIX, 2) != 0) return -EINVAL;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[2 + i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return -EINVAL;
        v = v << 4 | (uint64_t)d;
    }
    *ts = (int64_t)(v ^ (1ULL << 63));
    return store_alert_id_parse(s + 18, STORE_ALERT_ID_HEX_CHARS, id);
}

typedef struct list_ctx {
    api_req *r;
    uint32_t n;
} list_ctx;

static int list_one(void *ctx, const store_alert *a)
{
    list_ctx *l = ctx;
    if (l->n++) buf_putc(&l->r->body, ',');
    render_alert(&l->r->body, a);
    return l->r->body.len > ALERTS_PAGE_MAX_BYTES;
}

void handle_alerts(api_req *r)
{
    static const char *const allowed[] = {"from", "to", "host", "rule", "level", "status", "limit", "cursor"};
    struct evkeyvalq params;
    params.tqh_first = NULL;
    params.tqh_last = &params.tqh_first;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *qs = evhttp_uri_get_query(uri);
    if (qs && evhttp_parse_query_str(qs, &params) != 0) {
        reply_error(r, 400, "bad_request", "malformed query string");
        return;
    }
    for (struct evkeyval *kv = params.tqh_first; kv; kv = kv->next.tqe_next) {
        bool known = false;
        for (size_t i = 0; i < MAMORI_ARRAY_LEN(allowed); i++) known = known || !strcmp(kv->key, allowed[i]);
        if (!known) {
            reply_error(r, 400, "bad_request",
                        "unknown parameter '%.64s' (from, to, host, rule, level, status, limit, cursor)", kv->key);
            goto out;
        }
    }
    store_alert_query q = {.tenant_hash = event_tenant_hash(r->tenant), .from_us = INT64_MIN, .to_us = INT64_MAX,
                           .level = -1, .status = -1, .limit = ALERTS_DEFAULT_LIMIT,
                           .max_examined = r->a->cfg->api.max_candidates};
    const char *v;
    if (((v = query_param(r, &params, "from")) && clock_parse_rfc3339(v, strlen(v), &q.from_us) != 0) ||
        ((v = query_param(r, &params, "to")) && clock_parse_rfc3339(v, strlen(v), &q.to_us) != 0)) {
        reply_error(r, 400, "bad_request", "'from' and 'to' must be RFC 3339 times such as 2024-03-01T00:00:00Z");
        goto out;
    }
    if (q.from_us >= q.to_us) {
        reply_error(r, 400, "bad_request", "'from' must be before 'to'");
        goto out;
    }
    if ((v = query_param(r, &params, "host"))) {
        if (!v[0]) {
            reply_error(r, 400, "bad_request", "'host' must not be empty");
            goto out;
        }
        q.host_hash = store_alert_term_hash(v, strlen(v));
    }
    if ((v = query_param(r, &params, "rule"))) {
        if (!v[0]) {
            reply_error(r, 400, "bad_request", "'rule' must not be empty");
            goto out;
        }
        q.rule_hash = store_alert_term_hash(v, strlen(v));
    }
    if ((v = query_param(r, &params, "level")) && (q.level = level_parse(v)) < 0) {
        reply_error(r, 400, "bad_request", "'level' must be informational, low, medium, high, critical or none");
        goto out;
    }
    enum store_alert_status st;
    if ((v = query_param(r, &params, "status"))) {
        if (store_alert_status_parse(v, strlen(v), &st) != 0) {
            reply_error(r, 400, "bad_request", "'status' must be new, acknowledged or closed");
            goto out;
        }
        q.status = (int)st;
    }
    if ((v = query_param(r, &params, "limit"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || !v[0] || n < 1) {
            reply_error(r, 400, "bad_request", "'limit' must be a positive integer");
            goto out;
        }
        if (n > (long)r->a->cfg->api.max_result_rows) {
            reply_error(r, 400, "too_large", "'limit' %ld is over the maximum of %u", n, r->a->cfg->api.max_result_rows);
            goto out;
        }
        q.limit = (uint32_t)n;
    }
    if ((v = query_param(r, &params, "cursor"))) {
        if (cursor_parse(v, &q.after_ts_us, q.after_id) != 0) {
            reply_error(r, 400, "bad_request", "'cursor' must be the string a previous page returned");
            goto out;
        }
        q.after = true;
    }
    buf_puts(&r->body, "{\"alerts\":[");
    list_ctx l = {.r = r};
    store_alert_page page;
    int rc = store_alerts_list(r->a->db, &q, list_one, &l, &page);
    if (rc) {
        reply_error(r, 500, "internal", "listing alerts failed (%d)", rc);
        goto out;
    }
    buf_putc(&r->body, ']');
    if (page.more) {
        char cursor[CURSOR_CHARS + 1];
        cursor_format(cursor, page.next_ts_us, page.next_id);
        buf_printf(&r->body, ",\"cursor\":\"%s\"", cursor);
    }
    buf_putc(&r->body, '}');
    r->rows = page.returned;
    reply_json(r, 200);
out:
    evhttp_clear_headers(&params);
}

static bool parse_id(api_req *r, const char *s, uint8_t id[STORE_ALERT_ID_BYTES])
{
    if (!s || store_alert_id_parse(s, strlen(s), id) != 0) {
        reply_error(r, 400, "bad_request", "'%.80s' is not an alert id (%u hex digits)", s ? s : "",
                    STORE_ALERT_ID_HEX_CHARS);
        return false;
    }
    return true;
}

void handle_alert_get(api_req *r, const char *id_s)
{
    uint8_t id[STORE_ALERT_ID_BYTES];
    if (!parse_id(r, id_s, id)) return;
    buf storage;
    buf_init(&storage);
    store_alert a;
    int rc = store_alert_get(r->a->db, event_tenant_hash(r->tenant), id, &a, &storage);
    if (rc == -ENOENT) reply_error(r, 404, "not_found", "no alert %s", id_s);
    else if (rc) reply_error(r, 500, "internal", "reading the alert failed (%d)", rc);
    else {
        render_alert(&r->body, &a);
        r->rows = 1;
        reply_json(r, 200);
    }
    buf_fini(&storage);
}

void handle_alert_patch(api_req *r, const char *id_s)
{
    uint8_t id[STORE_ALERT_ID_BYTES];
    if (!parse_id(r, id_s, id)) return;
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 4096);
    buf text, storage;
    buf_init(&text);
    buf_init(&storage);
    const json_value *body = read_json_body(r, p, &ar, &text);
    if (!body) goto out;
    bool set_status = false, set_assignee = false;
    enum store_alert_status status = STORE_ALERT_NEW;
    const char *assignee = NULL;
    size_t assignee_len = 0;
    for (uint32_t i = 0; i < body->len; i++) {
        const json_member *m = &body->members[i];
        const json_value *v = &m->value;
        if (m->key_len == 6 && !memcmp(m->key, "status", 6)) {
            if (!json_is_string(v) || store_alert_status_parse(v->str, v->len, &status) != 0) {
                reply_error(r, 400, "bad_request", "'status' must be new, acknowledged or closed");
                goto out;
            }
            set_status = true;
        } else if (m->key_len == 8 && !memcmp(m->key, "assignee", 8)) {
            if (v->type == JSON_NULL) {
                assignee = "";
            } else if (!json_is_string(v) || v->len > STORE_ALERT_ASSIGNEE_MAX || memchr(v->str, '\0', v->len)) {
                reply_error(r, 400, "bad_request", "'assignee' must be a string of at most %u bytes, or null",
                            STORE_ALERT_ASSIGNEE_MAX);
                goto out;
            } else {
                assignee = v->str;
                assignee_len = v->len;
            }
            set_assignee = true;
        } else {
            reply_error(r, 400, "bad_request", "unknown field '%.*s' (status, assignee)",
                        (int)MAMORI_MIN(m->key_len, 64u), m->key);
            goto out;
        }
    }
    if (!set_status && !set_assignee) {
        reply_error(r, 400, "bad_request", "nothing to change: send 'status' and/or 'assignee'");
        goto out;
    }
    store_alert a;
    int rc = store_alert_update(r->a->db, event_tenant_hash(r->tenant), id, set_status, status, set_assignee, assignee,
                                assignee_len, clock_wall_us(), &a, &storage);
    if (rc == -ENOENT) {
        reply_error(r, 404, "not_found", "no alert %s", id_s);
        goto out;
    }
    if (rc) {
        reply_error(r, 500, "internal", "updating the alert failed (%d)", rc);
        goto out;
    }
    buf who; /* quoted: an assignee is free text and must not forge log fields */
    buf_init(&who);
    json_write_string(&who, a.assignee, MAMORI_MIN(a.assignee_len, 64u));
    LOG_INFO("api", "audit alert_updated tenant=%s id=%s status=%s assignee=%s by=%s result=ok", r->tenant, id_s,
             store_alert_status_name((enum store_alert_status)a.status), buf_cstr(&who), r->key_id);
    {
        buf detail;
        buf_init(&detail);
        buf_printf(&detail, "{\"status\":\"%s\",\"assignee\":%s}",
                   store_alert_status_name((enum store_alert_status)a.status), buf_cstr(&who));
        api_audit(r, "alert.update", id_s, detail.data, detail.len, "ok");
        buf_fini(&detail);
    }
    buf_fini(&who);
    render_alert(&r->body, &a);
    r->rows = 1;
    reply_json(r, 200);
out:
    buf_fini(&storage);
    buf_fini(&text);
    arena_fini(&ar);
    json_parser_destroy(p);
}
