/* api/fanout.c — an API process with `api.shards` answers POST /v1/search, GET
 * /v1/events/{id} and GET /v1/alerts from the store shards (docs/scaling.md §6): it sends
 * the request to every shard's own API at once (libcurl multi, TLS verified with
 * api.shards_ca, the caller's bearer key forwarded, api.shard_timeout_ms per shard) and
 * merges the answers exactly as one store holding all the data would have answered:
 *   - events and sequences: a k-way merge on the storage key (mamori.event_id: time, agent,
 *     seq, index; a sequence by its last event), honouring limit, head N and pagination.
 *     The merged cursor holds each shard's cursor and how many rows of the page fetched at
 *     that cursor were already returned;
 *   - | count: the sum (capped by head/tail N); | count by: groups summed by key, then
 *     ordered (count descending, key) and paged by offset; tail N: each shard's last N,
 *     merged, the last N kept, paged by offset;
 *   - alerts: newest first (time descending, id), the merged cursor is the alert position;
 *   - events/{id}: the shard that has it.
 * A shard that cannot be reached or fails is an error naming the shard (502), never a
 * silently partial answer. */
#include "fanout_internal.h"

#include "core/clock.h"
#include "core/event.h"
#include "core/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- one record by id: the shard that has it ---- */

/* Sends method path (and body) to every shard; the first 200 is the answer; 404 only when
 * every shard says so; otherwise the first other failure, naming its shard. A PATCH reaches
 * every shard, and changes the one that holds the record (the others answer 404). */
static void find_one(api_req *r, const config_list *nodes, const char *method, const char *path, const char *body,
                     size_t body_len, const char *what, const char *content_type);

void fanout_find_one(api_req *r, const config_list *nodes, const char *method, const char *path, const char *body,
                     size_t body_len, const char *what)
{
    find_one(r, nodes, method, path, body, body_len, what, NULL);
}

void fanout_get_by_id(api_req *r, const config_list *nodes, const char *collection, const char *noun, const char *id,
                      const char *content_type)
{
    char path[192], what[160];
    snprintf(path, sizeof path, "/v1/%s/%s", collection, id);
    snprintf(what, sizeof what, "%s %s", noun, id);
    find_one(r, nodes, "GET", path, NULL, 0, what, content_type);
}

static void find_one(api_req *r, const config_list *nodes, const char *method, const char *path, const char *body,
                     size_t body_len, const char *what, const char *content_type)
{
    uint32_t n = nodes->count;
    shard_call *calls = fanout_calls_for(nodes);
    for (uint32_t i = 0; i < n; i++) {
        fanout_call_url(&calls[i], path);
        if (body) buf_append(&calls[i].req, body, body_len);
    }
    fanout_calls_run(r, method, calls, n);
    int found = -1, failed = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (calls[i].ok && calls[i].status == 200 && found < 0) found = (int)i;
        else if (!(calls[i].ok && calls[i].status == 404) && failed < 0) failed = (int)i;
    }
    if (found >= 0 && content_type) {
        r->rows = 1;
        reply_bytes(r, 200, content_type, calls[found].out.data ? calls[found].out.data : "", calls[found].out.len);
    } else if (found >= 0) {
        buf_append(&r->body, calls[found].out.data, calls[found].out.len);
        r->rows = 1;
        reply_json(r, 200);
    } else if (failed >= 0) {
        /* not found on the others, unknown on this one: not a 404 */
        json_parser *p = json_parser_create();
        arena ar;
        arena_init(&ar, 4096);
        (void)fanout_call_failed(r, &calls[failed], p, &ar);
        arena_fini(&ar);
        json_parser_destroy(p);
    } else {
        reply_error(r, 404, "not_found", "no %s on any of the %u %s", what, n,
                    nodes == &r->a->cfg->api.shards ? "store shards" : "ingest nodes");
    }
    fanout_calls_free(calls, n);
}

void fanout_event(api_req *r, const char *id)
{
    if (!api_event_id_ok(r, id)) return;
    fanout_get_by_id(r, &r->a->cfg->api.shards, "events", "event", id, NULL);
}

void fanout_agent(api_req *r, const char *id)
{
    if (!api_agent_id_ok(r, id)) return;
    fanout_get_by_id(r, &r->a->cfg->api.shards, "agents", "agent", id, NULL);
}

typedef struct agent_at {
    const json_value *v;
    const char *hash; /* "agent_hash" */
    uint32_t hash_len;
    uint32_t node; /* shards first, then ingest nodes: later rows fill in live fields */
} agent_at;

static int agent_cmp(const void *x, const void *y)
{
    const agent_at *a = x, *b = y;
    int c = memcmp(a->hash, b->hash, MAMORI_MIN(a->hash_len, b->hash_len));
    if (c) return c;
    if (a->hash_len != b->hash_len) return a->hash_len < b->hash_len ? -1 : 1;
    return (a->node > b->node) - (a->node < b->node);
}

static bool same_agent(const agent_at *a, const agent_at *b)
{
    return a->hash_len == b->hash_len && !memcmp(a->hash, b->hash, a->hash_len);
}

/* One agent's rows as one object: every field of the first, each replaced by a later row's
 * value when that one is not null (an ingest node's live state over a shard's nulls), plus
 * the fields only later rows have. */
static void write_merged(buf *o, const agent_at *rows, size_t n)
{
    const json_member *keys[64];
    const json_value *vals[64];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const json_value *v = rows[i].v;
        for (uint32_t m = 0; m < v->len; m++) {
            const json_member *mem = &v->members[m];
            size_t j = 0;
            while (j < k && !(keys[j]->key_len == mem->key_len && !memcmp(keys[j]->key, mem->key, mem->key_len))) j++;
            if (j == k) {
                if (k == 64) continue;
                keys[k] = mem;
                vals[k++] = &mem->value;
            } else if (mem->value.type != JSON_NULL) {
                vals[j] = &mem->value;
            }
        }
    }
    buf_putc(o, '{');
    for (size_t j = 0; j < k; j++) {
        if (j) buf_putc(o, ',');
        json_write_string(o, keys[j]->key, keys[j]->key_len);
        buf_putc(o, ':');
        json_write_value(o, vals[j]);
    }
    buf_putc(o, '}');
}

/* GET /v1/agents behind api.shards and/or api.ingest_nodes: the shards' agents (their batches)
 * and the ingest nodes' (their registries and live state), one row per agent. */
void fanout_agents(api_req *r)
{
    const config_list *sh = &r->a->cfg->api.shards, *in = &r->a->cfg->api.ingest_nodes;
    config_list nodes = {0};
    for (uint32_t i = 0; i < sh->count; i++) config_list_append(&nodes, sh->items[i], strlen(sh->items[i]));
    for (uint32_t i = 0; i < in->count; i++) config_list_append(&nodes, in->items[i], strlen(in->items[i]));
    uint32_t n = nodes.count;
    shard_call *calls = fanout_calls_for(&nodes);
    for (uint32_t i = 0; i < n; i++) fanout_call_url(&calls[i], "/v1/agents");
    fanout_calls_run(r, "GET", calls, n);
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 64 * 1024);
    agent_at *all = NULL;
    size_t count = 0, cap = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (fanout_call_failed(r, &calls[i], p, &ar)) goto out;
        json_value *root = arena_alloc(&ar, sizeof *root);
        json_error jerr;
        char *t = arena_alloc(&ar, calls[i].out.len + 1);
        memcpy(t, calls[i].out.data ? calls[i].out.data : "", calls[i].out.len);
        t[calls[i].out.len] = '\0';
        const json_value *list;
        if (json_parse(p, &ar, t, calls[i].out.len, root, &jerr) != 0 ||
            !(list = json_object_get(root, "agents", 6)) || list->type != JSON_ARRAY) {
            reply_error(r, 502, "shard_error", "node %s: its answer has no 'agents' array", calls[i].base);
            goto out;
        }
        for (uint32_t k = 0; k < list->len; k++) {
            const json_value *h = json_object_get(&list->items[k], "agent_hash", 10);
            if (!json_is_string(h) || list->items[k].type != JSON_OBJECT) continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 256;
                all = mamori_xrealloc(all, cap * sizeof *all);
            }
            all[count++] = (agent_at){&list->items[k], h->str, h->len, i};
        }
    }
    qsort(all, count, sizeof *all, agent_cmp);
    buf_puts(&r->body, "{\"agents\":[");
    size_t listed = 0;
    for (size_t i = 0; i < count;) {
        size_t j = i + 1;
        while (j < count && same_agent(&all[j], &all[i])) j++;
        if (listed++) buf_putc(&r->body, ',');
        write_merged(&r->body, all + i, j - i);
        i = j;
    }
    buf_puts(&r->body, "]}");
    r->rows = listed;
    reply_json(r, 200);
out:
    free(all);
    arena_fini(&ar);
    json_parser_destroy(p);
    fanout_calls_free(calls, n);
    config_list_clear(&nodes);
}

/* A process tree is one host's, hence one shard's: the shard that knows the process. */
void fanout_tree(api_req *r)
{
    const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    buf path;
    buf_init(&path);
    buf_puts(&path, "/v1/process-tree");
    if (qs && qs[0]) {
        buf_putc(&path, '?');
        buf_puts(&path, qs);
    }
    buf_putc(&path, '\0');
    fanout_find_one(r, &r->a->cfg->api.shards, "GET", path.data, NULL, 0, "process with this entity_id");
    buf_fini(&path);
}

static bool alert_id_ok(api_req *r, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    bool ok = n == 32 && strspn(id, "0123456789abcdefABCDEF") == 32;
    if (!ok) reply_error(r, 400, "bad_request", "'%.80s' is not an alert id (32 hex digits)", id ? id : "");
    return ok;
}

void fanout_alert_get(api_req *r, const char *id)
{
    if (!alert_id_ok(r, id)) return;
    fanout_get_by_id(r, &r->a->cfg->api.shards, "alerts", "alert", id, NULL);
}

void fanout_alert_patch(api_req *r, const char *id)
{
    if (!alert_id_ok(r, id)) return;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len > r->a->cfg->api.max_body_bytes) {
        reply_error(r, 413, "body_too_large", "request body of %zu bytes is over the %u-byte limit", len,
                    r->a->cfg->api.max_body_bytes);
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    char path[64], what[64];
    snprintf(path, sizeof path, "/v1/alerts/%s", id);
    snprintf(what, sizeof what, "alert %s", id);
    fanout_find_one(r, &r->a->cfg->api.shards, "PATCH", path, body, len, what);
}

/* ---- GET /v1/alerts: newest first over the shards ---- */

typedef struct alert_pos {
    int64_t ts;
    char id[33];
} alert_pos;

/* order of the listing: time descending, then id ascending; < 0 when a comes first */
static int alert_cmp(const alert_pos *a, const alert_pos *b)
{
    if (a->ts != b->ts) return a->ts > b->ts ? -1 : 1;
    return strcmp(a->id, b->id);
}

static bool alert_cursor_parse(const char *s, alert_pos *p)
{
    if (strlen(s) != 2 + 16 + 32 || strncmp(s, "a1", 2) != 0) return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[2 + i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return false;
        v = v << 4 | (uint64_t)d;
    }
    p->ts = (int64_t)(v ^ ((uint64_t)1 << 63));
    memcpy(p->id, s + 18, 32);
    p->id[32] = '\0';
    return true;
}

static bool alert_pos_of(const json_value *a, alert_pos *p)
{
    const json_value *t = a->type == JSON_OBJECT ? json_object_get(a, "time", 4) : NULL;
    const json_value *id = a->type == JSON_OBJECT ? json_object_get(a, "id", 2) : NULL;
    if (!json_is_string(t) || !json_is_string(id) || id->len != 32) return false;
    if (clock_parse_rfc3339(t->str, t->len, &p->ts) != 0) return false;
    memcpy(p->id, id->str, 32);
    p->id[32] = '\0';
    return true;
}

void fanout_alerts(api_req *r)
{
    /* every parameter goes to the shards as given, but limit and cursor: the shards check
     * them (and answer 400 alike); the cursor is a position (time, id) valid on every shard */
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
    const char *qs = evhttp_uri_get_query(uri);
    struct evkeyvalq params;
    params.tqh_first = NULL;
    params.tqh_last = &params.tqh_first;
    if (qs && evhttp_parse_query_str(qs, &params) != 0) {
        reply_error(r, 400, "bad_request", "malformed query string");
        return;
    }
    uint32_t n = r->a->cfg->api.shards.count;
    shard_call *calls = fanout_calls_new(r->a);
    json_parser *p = json_parser_create();
    arena *ars = mamori_xcalloc(n, sizeof *ars);
    json_value *roots = mamori_xcalloc(n, sizeof *roots);
    for (uint32_t i = 0; i < n; i++) arena_init(&ars[i], 16 * 1024);
    buf rest;
    buf_init(&rest);
    uint64_t limit = 100;
    const char *lim = evhttp_find_header(&params, "limit");
    if (lim) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end || v < 1 || v > (long)r->a->cfg->api.max_result_rows) {
            reply_error(r, 400, v > 0 && !*end ? "too_large" : "bad_request",
                        "'limit' must be a positive integer up to %u", r->a->cfg->api.max_result_rows);
            goto out;
        }
        limit = (uint64_t)v;
    }
    for (struct evkeyval *kv = params.tqh_first; kv; kv = kv->next.tqe_next) {
        if (!strcmp(kv->key, "limit")) continue;
        buf_putc(&rest, '&');
        char *k = evhttp_encode_uri(kv->key), *v = evhttp_encode_uri(kv->value);
        buf_printf(&rest, "%s=%s", k ? k : "", v ? v : "");
        free(k);
        free(v);
    }
    for (uint32_t i = 0; i < n; i++) {
        fanout_call_url(&calls[i], "/v1/alerts");
        buf_printf(&calls[i].url, "?limit=%" PRIu64, limit);
        buf_append(&calls[i].url, rest.data, rest.len);
    }
    fanout_calls_run(r, "GET", calls, n);
    const json_value **lists = mamori_xcalloc(n, sizeof *lists);
    uint32_t *pos = mamori_xcalloc(n, sizeof *pos);
    bool have_bound = false;
    alert_pos bound = {0}; /* a shard that stopped early: nothing past its position is known */
    for (uint32_t i = 0; i < n; i++) {
        arena ear;
        arena_init(&ear, 4096);
        bool bad = fanout_call_failed(r, &calls[i], p, &ear);
        arena_fini(&ear);
        if (bad) goto out2;
        json_error jerr;
        char *t = arena_alloc(&ars[i], calls[i].out.len + 1);
        memcpy(t, calls[i].out.data ? calls[i].out.data : "", calls[i].out.len);
        t[calls[i].out.len] = '\0';
        if (json_parse(p, &ars[i], t, calls[i].out.len, &roots[i], &jerr) != 0 ||
            !(lists[i] = json_object_get(&roots[i], "alerts", 6)) || lists[i]->type != JSON_ARRAY) {
            reply_error(r, 502, "shard_error", "store shard %u (%s): its answer has no 'alerts' array", i,
                        calls[i].base);
            goto out2;
        }
        const json_value *cv = json_object_get(&roots[i], "cursor", 6);
        char cbuf[64];
        alert_pos cp;
        if (json_is_string(cv) && cv->len < sizeof cbuf) {
            memcpy(cbuf, cv->str, cv->len);
            cbuf[cv->len] = '\0';
            if (alert_cursor_parse(cbuf, &cp) && (!have_bound || alert_cmp(&cp, &bound) < 0)) {
                bound = cp;
                have_bound = true;
            }
        }
    }
    {
        buf_puts(&r->body, "{\"alerts\":[");
        uint64_t shown = 0;
        alert_pos last = {0};
        while (shown < limit) {
            int best = -1;
            alert_pos bp = {0};
            for (uint32_t i = 0; i < n; i++) {
                if (pos[i] >= lists[i]->len) continue;
                alert_pos ap;
                if (!alert_pos_of(&lists[i]->items[pos[i]], &ap)) {
                    buf_clear(&r->body);
                    reply_error(r, 502, "shard_error", "store shard %u (%s): an alert without time and id", i,
                                calls[i].base);
                    goto out2;
                }
                if (best < 0 || alert_cmp(&ap, &bp) < 0) best = (int)i, bp = ap;
            }
            if (best < 0 || (have_bound && alert_cmp(&bp, &bound) > 0)) break;
            if (shown) buf_putc(&r->body, ',');
            json_write_value(&r->body, &lists[best]->items[pos[best]]);
            pos[best]++;
            shown++;
            last = bp;
        }
        bool more = have_bound;
        for (uint32_t i = 0; i < n; i++) more |= pos[i] < lists[i]->len;
        buf_putc(&r->body, ']');
        if (more) {
            alert_pos c = shown ? last : bound;
            buf_printf(&r->body, ",\"cursor\":\"a1%016" PRIx64 "%s\"", (uint64_t)c.ts ^ ((uint64_t)1 << 63), c.id);
        }
        buf_putc(&r->body, '}');
        r->rows = shown;
        reply_json(r, 200);
    }
out2:
    free(lists);
    free(pos);
out:
    for (uint32_t i = 0; i < n; i++) arena_fini(&ars[i]);
    free(ars);
    free(roots);
    buf_fini(&rest);
    json_parser_destroy(p);
    fanout_calls_free(calls, n);
    evhttp_clear_headers(&params);
}
