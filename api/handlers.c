/* api/handlers.c — POST /v1/search, GET /v1/events/{id}, the keys endpoints and the agent
 * endpoints. Every read is limited to the tenant of the key that signed the request: the
 * tenant never comes from the request body or path. */
#include "internal.h"

#include "core/clock.h"
#include "core/event.h"
#include "core/log.h"
#include "core/pki.h"
#include "ingest/ingest.h"

#include <errno.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool api_get_time(api_req *r, const json_value *obj, const char *name, int64_t *out, bool *present)
{
    const json_value *v = json_object_get(obj, name, strlen(name));
    *present = false;
    if (!v || v->type == JSON_NULL) return true;
    if (v->type != JSON_STRING || clock_parse_rfc3339(v->str, v->len, out) != 0) {
        reply_error(r, 400, "bad_request", "'%s' must be an RFC 3339 time such as 2024-03-01T00:00:00Z", name);
        return false;
    }
    *present = true;
    return true;
}

int64_t api_default_to(const api *a)
{
    int64_t skew = a->cfg->ingest.max_clock_skew_s ? (int64_t)a->cfg->ingest.max_clock_skew_s : 86400;
    return clock_wall_us() + skew * 1000000;
}

static void map_search_error(api_req *r, const search_error *e)
{
    int status = 400;
    switch (e->code) {
    case SEARCH_ERR_DEADLINE:
        status = 504;
        atomic_fetch_add_explicit(&r->t->counters.search_deadline, 1, memory_order_relaxed);
        break;
    case SEARCH_ERR_INTERNAL: status = 500; break;
    default: status = 400; break;
    }
    reply_error_at(r, status, search_error_code_name(e->code), e->position, e->cursor, e->message);
}

/* The body of POST /v1/search: refuses unknown members and returns its "query" string
 * (borrowed from body), or NULL after replying 400. Shared by the local and the fan-out search. */
const json_value *search_body_query(api_req *r, const json_value *body)
{
    static const char *const allowed[] = {"query", "from", "to", "limit", "cursor", "explain"};
    for (uint32_t i = 0; i < body->len; i++) {
        const json_member *m = &body->members[i];
        bool known = false;
        for (size_t k = 0; k < MAMORI_ARRAY_LEN(allowed); k++)
            if (m->key_len == strlen(allowed[k]) && memcmp(m->key, allowed[k], m->key_len) == 0) known = true;
        if (!known) {
            reply_error(r, 400, "bad_request", "unknown field '%.*s' (query, from, to, limit, cursor, explain)",
                        (int)MAMORI_MIN(m->key_len, 64u), m->key);
            return NULL;
        }
    }
    const json_value *qv = json_object_get(body, "query", 5);
    if (!json_is_string(qv)) {
        reply_error(r, 400, "bad_request", "'query' (a string) is required");
        return NULL;
    }
    return qv;
}

void handle_search(api_req *r)
{
    api *a = r->a;
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 16 * 1024);
    buf text;
    buf_init(&text);
    search_query *q = NULL;
    const json_value *body = read_json_body(r, p, &ar, &text);
    if (!body) goto out;
    const json_value *qv = search_body_query(r, body);
    if (!qv) goto out;
    search_request req = {.tenant = r->tenant, .limit = 100};
    bool has_from, has_to;
    req.to_us = api_default_to(a);
    if (!api_get_time(r, body, "from", &req.from_us, &has_from) || !api_get_time(r, body, "to", &req.to_us, &has_to)) goto out;
    if (!has_from) req.from_us = req.to_us - (int64_t)a->cfg->api.default_range_hours * 3600 * 1000000;
    /* later pages keep the range of the first, which the cursor carries */
    const json_value *cv0 = json_object_get(body, "cursor", 6);
    int64_t cfrom, cto;
    if (json_is_string(cv0) && cv0->len <= SEARCH_CURSOR_MAX_CHARS) {
        char tmp[SEARCH_CURSOR_MAX_CHARS + 1];
        memcpy(tmp, cv0->str, cv0->len);
        tmp[cv0->len] = '\0';
        if (search_cursor_range(tmp, &cfrom, &cto) == 0) {
            if (!has_from) req.from_us = cfrom;
            if (!has_to) req.to_us = cto;
        }
    }
    if (!api_body_limit(r, body, &req.limit)) goto out;
    if (req.limit > a->cfg->api.max_result_rows) req.limit = a->cfg->api.max_result_rows;
    const json_value *cv = json_object_get(body, "cursor", 6);
    char cursor[SEARCH_CURSOR_MAX_CHARS + 1] = "";
    if (cv && cv->type != JSON_NULL) {
        if (cv->type != JSON_STRING || cv->len > SEARCH_CURSOR_MAX_CHARS) {
            reply_error(r, 400, "bad_request", "'cursor' must be the string a previous page returned");
            goto out;
        }
        memcpy(cursor, cv->str, cv->len);
        cursor[cv->len] = '\0';
        req.cursor = cursor;
    }
    const json_value *ev = json_object_get(body, "explain", 7);
    if (ev && ev->type != JSON_NULL) {
        if (ev->type != JSON_BOOL) {
            reply_error(r, 400, "bad_request", "'explain' must be true or false");
            goto out;
        }
        req.explain = ev->num.b;
    }
    if (req.from_us >= req.to_us) {
        reply_error(r, 400, "bad_request", "'from' must be before 'to'");
        goto out;
    }
    search_error serr;
    if (search_compile(qv->str, qv->len, &q, &serr) != 0) {
        map_search_error(r, &serr);
        goto out;
    }
    req.deadline_mono_us = clock_mono_us() + (int64_t)a->cfg->api.query_deadline_ms * 1000;
    search_stats st;
    buf_clear(&r->body);
    int rc = search_execute(a->db, q, &req, &a->limits, &r->body, &st, &serr);
    api_counters *c = &r->t->counters;
    atomic_fetch_add_explicit(&c->search_refs, st.refs_read, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->search_fetched, st.events_fetched, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->search_scanned, st.events_scanned, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->search_parsed, st.events_parsed, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->search_rows, st.rows, memory_order_relaxed);
    r->plan = st.plan;
    r->rows = st.rows;
    if (rc) {
        map_search_error(r, &serr);
        goto out;
    }
    reply_json(r, 200);
out:
    search_query_destroy(q);
    buf_fini(&text);
    arena_fini(&ar);
    json_parser_destroy(p);
}

void handle_event(api_req *r, const char *id)
{
    int64_t ts;
    uint64_t agent, seq;
    uint32_t index;
    if (!api_event_id_ok(r, id) || event_id_parse(id, strlen(id), &ts, &agent, &seq, &index) != 0) return;
    buf json;
    buf_init(&json);
    int rc = store_get_event(r->a->db, event_tenant_hash(r->tenant), ts, agent, seq, index, &json);
    if (rc == -ENOENT) {
        reply_error(r, 404, "not_found", "no event %s", id);
    } else if (rc) {
        reply_error(r, 500, "internal", "reading the event failed (%d)", rc);
    } else {
        store_event_ref ref = {.ts_us = ts, .agent_hash = agent, .seq = seq, .index = index};
        search_render_event(&r->body, json.data, json.len, &ref);
        r->rows = 1;
        reply_json(r, 200);
    }
    buf_fini(&json);
}

/* ---- keys ---- */

typedef struct key_list {
    api_req *r;
    json_parser *p;
    arena a;
    uint32_t n;
} key_list;

static int list_key(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len)
{
    (void)key;
    (void)key_len;
    key_list *kl = ctx;
    arena_reset(&kl->a);
    json_value v;
    json_error jerr;
    if (json_parse(kl->p, &kl->a, value, value_len, &v, &jerr) != 0 || v.type != JSON_OBJECT) return 0;
    const json_value *t = json_object_get(&v, "tenant", 6);
    if (!json_is_string(t) || t->len != strlen(kl->r->tenant) || memcmp(t->str, kl->r->tenant, t->len) != 0) return 0;
    if (kl->n++) buf_putc(&kl->r->body, ',');
    buf_append(&kl->r->body, value, value_len); /* {id, tenant, role, name, created}: no secret */
    return 0;
}

void handle_keys(api_req *r, int create)
{
    if (!create) {
        key_list kl = {.r = r, .p = json_parser_create()};
        arena_init(&kl.a, 2048);
        buf_puts(&r->body, "{\"keys\":[");
        int rc = store_meta_scan(r->a->db, "apikey/", list_key, &kl);
        buf_puts(&r->body, "]}");
        arena_fini(&kl.a);
        json_parser_destroy(kl.p);
        r->rows = kl.n;
        if (rc < 0) reply_error(r, 500, "internal", "listing keys failed (%d)", rc);
        else reply_json(r, 200);
        return;
    }
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 4096);
    buf text;
    buf_init(&text);
    const json_value *body = read_json_body(r, p, &ar, &text);
    if (!body) goto out;
    char tenant[80], role_s[32] = "", name[128] = "";
    snprintf(tenant, sizeof tenant, "%s", r->tenant);
    for (uint32_t i = 0; i < body->len; i++) {
        const json_member *m = &body->members[i];
        const json_value *v = &m->value;
        char *dst = NULL;
        size_t cap = 0;
        if (m->key_len == 6 && !memcmp(m->key, "tenant", 6)) dst = tenant, cap = sizeof tenant;
        else if (m->key_len == 4 && !memcmp(m->key, "role", 4)) dst = role_s, cap = sizeof role_s;
        else if (m->key_len == 4 && !memcmp(m->key, "name", 4)) dst = name, cap = sizeof name;
        if (!dst) {
            reply_error(r, 400, "bad_request", "unknown field '%.*s' (tenant, role, name)",
                        (int)MAMORI_MIN(m->key_len, 64u), m->key);
            goto out;
        }
        if (v->type != JSON_STRING || v->len >= cap || memchr(v->str, '\0', v->len)) {
            reply_error(r, 400, "bad_request", "'%.*s' must be a string of under %zu bytes", (int)m->key_len, m->key,
                        cap);
            goto out;
        }
        memcpy(dst, v->str, v->len);
        dst[v->len] = '\0';
    }
    if (strcmp(tenant, r->tenant) != 0) {
        atomic_fetch_add_explicit(&r->t->counters.forbidden, 1, memory_order_relaxed);
        reply_error(r, 403, "forbidden", "a key can only create keys for its own tenant");
        goto out;
    }
    enum api_role role;
    if (api_role_parse(role_s, &role) != 0) {
        reply_error(r, 400, "bad_request", "'role' must be viewer, analyst, responder or admin");
        goto out;
    }
    char key[API_KEY_CHARS + 1], id[API_KEY_ID_CHARS + 1], now[32];
    if (api_key_create(r->a->db, r->tenant, role, name, key, id) != 0) {
        reply_error(r, 500, "internal", "storing the key failed");
        goto out;
    }
    clock_format_rfc3339(clock_wall_us(), now);
    buf_printf(&r->body, "{\"id\":\"%s\",\"key\":\"%s\",\"tenant\":", id, key);
    json_write_string(&r->body, r->tenant, strlen(r->tenant));
    buf_printf(&r->body, ",\"role\":\"%s\",\"name\":", api_role_name(role));
    json_write_string(&r->body, name, strlen(name));
    buf_printf(&r->body, ",\"created\":\"%s\"}", now);
    LOG_INFO("api", "audit key_created tenant=%s id=%s role=%s by=%s", r->tenant, id, api_role_name(role), r->key_id);
    {
        char detail[96];
        snprintf(detail, sizeof detail, "{\"role\":\"%s\"}", api_role_name(role));
        api_audit(r, "key.create", id, detail, strlen(detail), "ok");
    }
    reply_json(r, 201);
    memset(key, 0, sizeof key);
out:
    buf_fini(&text);
    arena_fini(&ar);
    json_parser_destroy(p);
}

typedef struct key_find {
    api_req *r;
    const char *id;
    char meta_key[80];
    bool found, other_tenant;
    json_parser *p;
    arena a;
} key_find;

static int find_key(void *ctx, const char *key, size_t key_len, const char *value, size_t value_len)
{
    key_find *kf = ctx;
    if (key_len != 7 + 64 || strncmp(key + 7, kf->id, API_KEY_ID_CHARS) != 0) return 0;
    json_value v;
    json_error jerr;
    if (json_parse(kf->p, &kf->a, value, value_len, &v, &jerr) != 0) return 0;
    const json_value *t = json_object_get(&v, "tenant", 6);
    if (!json_is_string(t) || t->len != strlen(kf->r->tenant) || memcmp(t->str, kf->r->tenant, t->len) != 0) {
        kf->other_tenant = true;
        return 0;
    }
    snprintf(kf->meta_key, sizeof kf->meta_key, "%.*s", (int)key_len, key);
    kf->found = true;
    return 1;
}

void handle_key_delete(api_req *r, const char *id)
{
    if (!id || strlen(id) != API_KEY_ID_CHARS || strspn(id, "0123456789abcdef") != API_KEY_ID_CHARS) {
        reply_error(r, 400, "bad_request", "a key id is %d hex digits", API_KEY_ID_CHARS);
        return;
    }
    key_find kf = {.r = r, .id = id, .p = json_parser_create()};
    arena_init(&kf.a, 2048);
    char prefix[40];
    snprintf(prefix, sizeof prefix, "apikey/%s", id);
    int rc = store_meta_scan(r->a->db, prefix, find_key, &kf);
    arena_fini(&kf.a);
    json_parser_destroy(kf.p);
    if (rc < 0) {
        reply_error(r, 500, "internal", "reading keys failed (%d)", rc);
        return;
    }
    if (!kf.found) { /* another tenant's key is "not found" too: nothing leaks */
        reply_error(r, 404, "not_found", "no key %s", id);
        return;
    }
    if (store_meta_delete(r->a->db, kf.meta_key) != 0) {
        reply_error(r, 500, "internal", "deleting the key failed");
        return;
    }
    LOG_INFO("api", "audit key_deleted tenant=%s id=%s by=%s", r->tenant, id, r->key_id);
    api_audit(r, "key.delete", id, NULL, 0, "ok");
    buf_printf(&r->body, "{\"id\":\"%s\",\"deleted\":true}", id);
    reply_json(r, 200);
}

/* ---- agents ----
 *
 * An agent is listed when the store holds a durable batch of it (its id, recorded with its
 * first batch, and its last acknowledged seq survive restarts) or when ingest has seen it
 * since start-up (connected, nothing durable yet). Ingest's registry adds what only a live
 * connection knows: online, last seen, address, version, events received since start-up. */

typedef struct agent_row {
    uint64_t hash, seq;
    const char *id; /* store-owned (valid while the store is open) or NULL */
    bool stored;
} agent_row;

typedef struct agent_rows {
    agent_row *v;
    uint32_t n, cap;
} agent_rows;

static agent_row *row_push(agent_rows *rows)
{
    if (rows->n == rows->cap) {
        rows->cap = rows->cap ? rows->cap * 2 : 256;
        rows->v = mamori_xrealloc(rows->v, rows->cap * sizeof *rows->v);
    }
    return &rows->v[rows->n++];
}

static int add_row(void *ctx, uint64_t agent_hash, uint64_t durable_seq, const char *agent_id)
{
    *row_push(ctx) = (agent_row){agent_hash, durable_seq, agent_id, true};
    return 0;
}

/* Ingest's agents that the store does not know yet (ids copied into the arena). */
typedef struct live_scan {
    agent_rows *rows;
    uint32_t stored;
    arena *a;
} live_scan;

static int add_live(void *ctx, const ingest_agent_info *ag)
{
    live_scan *ls = ctx;
    uint64_t ah = event_agent_hash(ag->tenant, ag->agent_id);
    for (uint32_t i = 0; i < ls->stored; i++)
        if (ls->rows->v[i].hash == ah) return 0;
    *row_push(ls->rows) = (agent_row){ah, ag->durable_seq, arena_strndup(ls->a, ag->agent_id, strlen(ag->agent_id)), false};
    return 0;
}

static void time_or_null(buf *out, int64_t us)
{
    if (us <= 0) {
        buf_puts(out, "null");
        return;
    }
    char t[40];
    clock_format_rfc3339(us, t);
    json_write_string(out, t, strlen(t));
}

static void write_agent(api_req *r, const agent_row *row)
{
    buf *o = &r->body;
    buf_puts(o, "{\"id\":");
    if (row->id) json_write_string(o, row->id, strlen(row->id));
    else buf_puts(o, "null");
    buf_printf(o, ",\"agent_hash\":\"%016llx\",\"tenant\":", (unsigned long long)row->hash);
    json_write_string(o, r->tenant, strlen(r->tenant));
    ingest_agent_info info;
    bool live = r->a->ingest && row->id && ingest_get_agent(r->a->ingest, r->tenant, row->id, &info) == 0;
    uint64_t seq = row->seq;
    if (live && info.durable_seq > seq) seq = info.durable_seq;
    buf_printf(o, ",\"last_acked_seq\":%llu,\"online\":%s", (unsigned long long)seq,
               live ? (info.online ? "true" : "false") : (r->a->ingest ? "false" : "null"));
    buf_puts(o, ",\"last_seen\":");
    time_or_null(o, live ? info.last_seen_us : 0);
    buf_puts(o, ",\"connected_since\":");
    time_or_null(o, live ? info.connected_since_us : 0);
    buf_puts(o, ",\"address\":");
    if (live && info.address[0]) json_write_string(o, info.address, strlen(info.address));
    else buf_puts(o, "null");
    /* the registry record (response service): what survives restarts */
    buf rec;
    buf_init(&rec);
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 4096);
    json_value rv;
    json_error jerr;
    uint64_t th = event_tenant_hash(r->tenant);
    bool has_rec = store_agent_info_get(r->a->db, th, row->hash, &rec) == 0 &&
                   json_parse(p, &ar, rec.data, rec.len, &rv, &jerr) == 0 && rv.type == JSON_OBJECT;
    buf_puts(o, ",\"version\":");
    const json_value *rver = has_rec ? json_object_get(&rv, "agent_version", 13) : NULL;
    if (live && info.version[0]) json_write_string(o, info.version, strlen(info.version));
    else if (json_is_string(rver)) json_write_string(o, rver->str, rver->len);
    else buf_puts(o, "null");
    static const char *const copied[] = {"first_seen", "host", "capabilities"};
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(copied); i++) {
        const json_value *v = has_rec ? json_object_get(&rv, copied[i], strlen(copied[i])) : NULL;
        buf_printf(o, ",\"%s\":", copied[i]);
        if (v) json_write_value(o, v);
        else buf_puts(o, "null");
    }
    if (!live) { /* last seen from the record when ingest has not seen it since start-up */
        const json_value *ls = has_rec ? json_object_get(&rv, "last_seen", 9) : NULL;
        if (json_is_string(ls)) {
            buf_puts(o, ",\"last_seen_recorded\":");
            json_write_value(o, ls);
        }
    }
    int desired = STORE_ISOLATION_NONE;
    int64_t desired_at = 0;
    if (store_agent_isolation_get(r->a->db, th, row->hash, &desired, &desired_at) != 0) desired_at = 0;
    const json_value *rep_v = has_rec ? json_object_get(&rv, "isolation_reported", 18) : NULL;
    const json_value *rep_at = has_rec ? json_object_get(&rv, "reported_at", 11) : NULL;
    buf_printf(o, ",\"isolation\":{\"desired\":\"%s\",\"desired_at\":", store_isolation_name(desired));
    time_or_null(o, desired_at);
    buf_puts(o, ",\"reported\":");
    if (json_is_string(rep_v)) json_write_value(o, rep_v);
    else buf_puts(o, "null");
    buf_puts(o, ",\"reported_at\":");
    if (json_is_string(rep_at)) json_write_value(o, rep_at);
    else buf_puts(o, "null");
    const char *dname = store_isolation_name(desired);
    bool drift = json_is_string(rep_v) && (rep_v->len != strlen(dname) || memcmp(rep_v->str, dname, rep_v->len) != 0);
    buf_printf(o, ",\"drift\":%s}", drift ? "true" : "false");
    arena_fini(&ar);
    json_parser_destroy(p);
    buf_fini(&rec);
    if (live)
        buf_printf(o, ",\"events_received\":%llu,\"batches_received\":%llu}",
                   (unsigned long long)info.events_received, (unsigned long long)info.batches_received);
    else buf_puts(o, ",\"events_received\":null,\"batches_received\":null}");
}

/* Agents with a registry record only (connected, never stored a batch). */
typedef struct rec_scan {
    agent_rows *rows;
    uint32_t known;
    arena *a;
    json_parser *p;
    arena scratch;
} rec_scan;

static int add_recorded(void *ctx, uint64_t agent_hash, const char *json, size_t len)
{
    rec_scan *rs = ctx;
    for (uint32_t i = 0; i < rs->known; i++)
        if (rs->rows->v[i].hash == agent_hash) return 0;
    arena_reset(&rs->scratch);
    json_value v;
    json_error jerr;
    if (json_parse(rs->p, &rs->scratch, json, len, &v, &jerr) != 0 || v.type != JSON_OBJECT) return 0;
    const json_value *id = json_object_get(&v, "id", 2);
    if (!json_is_string(id)) return 0;
    *row_push(rs->rows) = (agent_row){agent_hash, 0, arena_strndup(rs->a, id->str, id->len), false};
    return 0;
}

static void collect_agents(api_req *r, agent_rows *rows, arena *a)
{
    (void)store_list_agents(r->a->db, event_tenant_hash(r->tenant), add_row, rows);
    rec_scan rs = {.rows = rows, .known = rows->n, .a = a, .p = json_parser_create()};
    arena_init(&rs.scratch, 4096);
    if (store_agent_info_scan(r->a->db, event_tenant_hash(r->tenant), add_recorded, &rs) < 0)
        LOG_RATELIMITED(LOG_LEVEL_ERROR, "api", 5, "reading agent registry records failed");
    arena_fini(&rs.scratch);
    json_parser_destroy(rs.p);
    if (r->a->ingest) {
        live_scan ls = {.rows = rows, .stored = rows->n, .a = a};
        ingest_list_agents(r->a->ingest, r->tenant, add_live, &ls);
    }
}

void handle_agents(api_req *r)
{
    agent_rows rows = {0};
    arena a;
    arena_init(&a, 4096);
    collect_agents(r, &rows, &a);
    buf_puts(&r->body, "{\"agents\":[");
    for (uint32_t i = 0; i < rows.n; i++) {
        if (i) buf_putc(&r->body, ',');
        write_agent(r, &rows.v[i]);
    }
    buf_puts(&r->body, "]}");
    r->rows = rows.n;
    free(rows.v);
    arena_fini(&a);
    reply_json(r, 200);
}

void handle_agent(api_req *r, const char *id)
{
    if (!api_agent_id_ok(r, id)) return;
    uint64_t ah = event_agent_hash(r->tenant, id);
    agent_rows rows = {0};
    arena a;
    arena_init(&a, 4096);
    collect_agents(r, &rows, &a);
    const agent_row *found = NULL;
    for (uint32_t i = 0; i < rows.n && !found; i++)
        if (rows.v[i].hash == ah) found = &rows.v[i];
    if (!found) reply_error(r, 404, "not_found", "no agent '%s' in this tenant", id);
    else {
        agent_row row = *found;
        row.id = id; /* known by its hash even when stored before ids were recorded */
        write_agent(r, &row);
        r->rows = 1;
        reply_json(r, 200);
    }
    free(rows.v);
    arena_fini(&a);
}

bool api_agent_id_ok(api_req *r, const char *id)
{
    if (id && pki_agent_id_valid(id)) return true;
    reply_error(r, 400, "bad_request", "'%.80s' is not an agent id", id ? id : "");
    return false;
}

bool api_event_id_ok(api_req *r, const char *id)
{
    int64_t ts;
    uint64_t agent, seq;
    uint32_t index;
    if (id && event_id_parse(id, strlen(id), &ts, &agent, &seq, &index) == 0) return true;
    reply_error(r, 400, "bad_request", "'%.80s' is not an event id (%d hex digits)", id ? id : "", EVENT_ID_HEX_CHARS);
    return false;
}

bool api_body_limit(api_req *r, const json_value *body, uint32_t *limit)
{
    const json_value *lv = json_object_get(body, "limit", 5);
    if (!lv || lv->type == JSON_NULL) return true;
    if (lv->type != JSON_NUMBER || !(lv->flags & JSON_FLAG_INT) || lv->num.i < 1) {
        reply_error(r, 400, "bad_request", "'limit' must be a positive integer");
        return false;
    }
    if (lv->num.i > (int64_t)r->a->cfg->api.max_result_rows) {
        reply_error(r, 400, "too_large", "'limit' %lld is over the maximum of %u rows", (long long)lv->num.i,
                    r->a->cfg->api.max_result_rows);
        return false;
    }
    *limit = (uint32_t)lv->num.i;
    return true;
}
