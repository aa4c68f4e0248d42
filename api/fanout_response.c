/* api/fanout_response.c — remote response behind `api.ingest_nodes` (split roles,
 * docs/scaling.md §6). An agent's connection, its registry record and the response service
 * that delivers its actions live in the ingest process it connects to, on that process's own
 * store; an API node therefore creates, lists and reads actions there: the agent's ingest
 * node is the one where it is online, else the one whose registry saw it last. Answers
 * (201, 4xx naming the field, 409 queue full…) are that node's, relayed as they are; fetched
 * files are read from the node holding them. */
#include "fanout_internal.h"

#include "core/clock.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node's answer as this API's: relayed when it is the node's own verdict on the request,
 * else (transport failure, refused key, 5xx) an error naming the node. */
static void relay(api_req *r, const shard_call *c)
{
    if (c->ok && c->status >= 200 && c->status < 500 && c->status != 401 && c->status != 403) {
        buf_clear(&r->body);
        buf_append(&r->body, c->out.data ? c->out.data : "", c->out.len);
        reply_json(r, (int)c->status);
        return;
    }
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 4096);
    if (!fanout_call_failed(r, c, p, &ar))
        reply_error(r, 502, "shard_error", "ingest node %u (%s) answered %ld", c->no, c->base, c->status);
    arena_fini(&ar);
    json_parser_destroy(p);
}

static const char *text_of(const json_value *o, const char *name)
{
    const json_value *v = json_object_get(o, name, strlen(name));
    return json_is_string(v) ? v->str : NULL;
}

/* The ingest node holding agent_id (index), or -1 when the request was answered (404 when no
 * node knows the agent, 502 when one cannot tell). Its GET /v1/agents/{id} answer in *agent. */
static int owner_of(api_req *r, const char *agent_id, buf *agent)
{
    const config_list *nodes = &r->a->cfg->api.ingest_nodes;
    uint32_t n = nodes->count;
    shard_call *calls = fanout_calls_for(nodes);
    char path[160];
    snprintf(path, sizeof path, "/v1/agents/%s", agent_id);
    for (uint32_t i = 0; i < n; i++) fanout_call_url(&calls[i], path);
    fanout_calls_run(r, "GET", calls, n);
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 16 * 1024);
    int best = -1, failed = -1;
    bool best_online = false;
    char best_seen[40] = "";
    for (uint32_t i = 0; i < n; i++) {
        if (!calls[i].ok || (calls[i].status != 200 && calls[i].status != 404)) {
            if (failed < 0) failed = (int)i;
            continue;
        }
        if (calls[i].status != 200) continue;
        json_value v;
        json_error jerr;
        char *t = arena_alloc(&ar, calls[i].out.len + 1);
        memcpy(t, calls[i].out.data ? calls[i].out.data : "", calls[i].out.len);
        t[calls[i].out.len] = '\0';
        if (json_parse(p, &ar, t, calls[i].out.len, &v, &jerr) != 0 || v.type != JSON_OBJECT) continue;
        const json_value *on = json_object_get(&v, "online", 6);
        bool online = on && on->type == JSON_BOOL && on->num.b;
        const char *seen = text_of(&v, "last_seen");
        if (!seen) seen = text_of(&v, "last_seen_recorded");
        char s[40];
        snprintf(s, sizeof s, "%.*s", seen ? (int)strcspn(seen, "\"") : 0, seen ? seen : "");
        /* online wins; else the latest seen (RFC 3339 in one format: compared as text) */
        if (best < 0 || (online && !best_online) || (online == best_online && strcmp(s, best_seen) > 0)) {
            best = (int)i;
            best_online = online;
            snprintf(best_seen, sizeof best_seen, "%s", s);
        }
    }
    if (best >= 0) {
        buf_clear(agent);
        buf_append(agent, calls[best].out.data, calls[best].out.len);
    } else if (failed >= 0) {
        relay(r, &calls[failed]);
    } else {
        reply_error(r, 404, "not_found", "no agent '%s' on any of the %u ingest nodes", agent_id, n);
    }
    arena_fini(&ar);
    json_parser_destroy(p);
    fanout_calls_free(calls, n);
    return best;
}

/* One call to node `node` of api.ingest_nodes, its answer relayed. */
static void call_node(api_req *r, int node, const char *method, const char *path, const char *query, const buf *body)
{
    shard_call *calls = fanout_calls_for(&r->a->cfg->api.ingest_nodes);
    uint32_t n = r->a->cfg->api.ingest_nodes.count;
    for (uint32_t i = 0; i < n; i++) calls[i].active = false;
    fanout_call_url(&calls[node], path);
    if (query && query[0]) buf_printf(&calls[node].url, "?%s", query);
    if (body) buf_append(&calls[node].req, body->data, body->len);
    fanout_calls_run(r, method, calls, n);
    relay(r, &calls[node]);
    fanout_calls_free(calls, n);
}

void fanout_action_create(api_req *r, const char *agent_id)
{
    if (!api_agent_id_ok(r, agent_id)) return;
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 4096);
    buf text, agent;
    buf_init(&text);
    buf_init(&agent);
    if (read_json_body(r, p, &ar, &text)) {
        int node = owner_of(r, agent_id, &agent);
        if (node >= 0) {
            char path[192];
            snprintf(path, sizeof path, "/v1/agents/%s/actions", agent_id);
            call_node(r, node, "POST", path, NULL, &text);
        }
    }
    buf_fini(&agent);
    buf_fini(&text);
    arena_fini(&ar);
    json_parser_destroy(p);
}

void fanout_agent_actions(api_req *r, const char *agent_id)
{
    if (!api_agent_id_ok(r, agent_id)) return;
    buf agent;
    buf_init(&agent);
    int node = owner_of(r, agent_id, &agent);
    if (node >= 0) {
        char path[192];
        snprintf(path, sizeof path, "/v1/agents/%s/actions", agent_id);
        call_node(r, node, "GET", path, evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req)), NULL);
    }
    buf_fini(&agent);
}

void fanout_action_get(api_req *r, const char *id)
{
    uint8_t bin[STORE_ACTION_ID_BYTES];
    if (!id || store_action_id_parse(id, strlen(id), bin) != 0) { /* the ingest nodes' own check */
        reply_error(r, 400, "bad_request", "'%.80s' is not an action id (%u hex digits)", id ? id : "",
                    STORE_ACTION_ID_HEX_CHARS);
        return;
    }
    fanout_get_by_id(r, &r->a->cfg->api.ingest_nodes, "actions", "action", id, NULL);
}

void fanout_agent_live(api_req *r, const char *agent_id)
{
    if (!api_agent_id_ok(r, agent_id)) return;
    buf agent;
    buf_init(&agent);
    int node = owner_of(r, agent_id, &agent);
    if (node >= 0) {
        buf_clear(&r->body);
        buf_append(&r->body, agent.data, agent.len);
        r->rows = 1;
        reply_json(r, 200);
    }
    buf_fini(&agent);
}

void fanout_file_get(api_req *r, const char *sha256)
{
    if (!sha256 || strlen(sha256) != 64 || strspn(sha256, "0123456789abcdefABCDEF") != 64) {
        reply_error(r, 400, "bad_request", "'%.80s' is not a sha256 (64 hex digits)", sha256 ? sha256 : "");
        return;
    }
    fanout_get_by_id(r, &r->a->cfg->api.ingest_nodes, "files", "file", sha256, "application/octet-stream");
}

/* ---- GET /v1/audit: this node's log and every ingest node's, merged newest first ----------- */

/* A node's place in a merged audit listing: its own cursor ("" = from the newest) and how many
 * entries of the page that cursor gives were already returned; done when it has no more. */
typedef struct audit_state {
    char cursor[40];
    uint32_t skip;
    bool done;
} audit_state;

typedef struct audit_row {
    const json_value *v;
    const char *at; /* RFC 3339, one fixed format: compared as text */
    uint32_t at_len, node, pos;
} audit_row;

static int audit_row_cmp(const void *x, const void *y)
{
    const audit_row *a = x, *b = y;
    int c = memcmp(b->at, a->at, MAMORI_MIN(a->at_len, b->at_len)); /* newest first */
    if (c) return c;
    if (a->node != b->node) return a->node < b->node ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

#define AUDIT_CURSOR_PREFIX "a1:"

/* "a1:" then, per node (this one first), "CURSOR,SKIP" with CURSOR "-" (from the newest),
 * "x" (done) or the node's own cursor; ':' between nodes. */
static bool audit_merged_cursor_parse(const char *v, audit_state *st, uint32_t n)
{
    if (strncmp(v, AUDIT_CURSOR_PREFIX, 3) != 0) return false;
    const char *p = v + 3;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strcspn(p, ",");
        if (!p[len] || len == 0 || len >= sizeof st[i].cursor) return false;
        memcpy(st[i].cursor, p, len);
        st[i].cursor[len] = '\0';
        st[i].done = !strcmp(st[i].cursor, "x");
        if (!strcmp(st[i].cursor, "-") || st[i].done) st[i].cursor[0] = '\0';
        store_audit_pos pos;
        if (st[i].cursor[0] && !audit_cursor_parse(st[i].cursor, &pos)) return false;
        char *end;
        unsigned long skip = strtoul(p + len + 1, &end, 10);
        if (end == p + len + 1 || skip > 1000000) return false;
        st[i].skip = (uint32_t)skip;
        p = end;
        if (i + 1 < n) {
            if (*p != ':') return false;
            p++;
        }
    }
    return *p == '\0';
}

/* The event time of a node cursor (its last examined entry), as the entries write it. */
static void cursor_at(const char *cursor, char out[40])
{
    store_audit_pos pos;
    out[0] = '\0';
    if (cursor[0] && audit_cursor_parse(cursor, &pos)) clock_format_rfc3339(pos.at_us, out);
}

void fanout_audit(api_req *r)
{
    struct evkeyvalq params;
    audit_query q;
    const config_list *nodes = &r->a->cfg->api.ingest_nodes;
    uint32_t n = nodes->count + 1, cap = r->a->cfg->api.max_result_rows; /* node 0: this one */
    audit_state *st = mamori_xcalloc(n, sizeof *st);
    shard_call *calls = fanout_calls_for(nodes);
    json_parser *p = json_parser_create();
    arena ar;
    arena_init(&ar, 64 * 1024);
    buf local, rest;
    buf_init(&local);
    buf_init(&rest);
    audit_row *rows = NULL;
    if (!audit_query_parse(r, &params, &q)) goto out;
    if (q.cursor && !audit_merged_cursor_parse(q.cursor, st, n)) {
        reply_error(r, 400, "bad_request", "'cursor' must be the string a previous page returned");
        goto out;
    }
    /* a page takes at most limit entries, and no node is asked for more than the cap */
    uint32_t max_skip = 0;
    for (uint32_t i = 0; i < n; i++) max_skip = MAMORI_MAX(max_skip, st[i].skip);
    uint32_t limit = MAMORI_MIN(q.limit, cap > max_skip ? cap - max_skip : 1);
    for (struct evkeyval *kv = params.tqh_first; kv; kv = kv->next.tqe_next) {
        if (!strcmp(kv->key, "limit") || !strcmp(kv->key, "cursor")) continue;
        char *k = evhttp_encode_uri(kv->key), *v = evhttp_encode_uri(kv->value);
        buf_printf(&rest, "&%s=%s", k ? k : "", v ? v : "");
        free(k);
        free(v);
    }
    for (uint32_t i = 1; i < n; i++) {
        if (st[i].done) continue;
        fanout_call_url(&calls[i - 1], "/v1/audit");
        buf_printf(&calls[i - 1].url, "?limit=%u", limit + st[i].skip);
        if (st[i].cursor[0]) buf_printf(&calls[i - 1].url, "&cursor=%s", st[i].cursor);
        buf_append(&calls[i - 1].url, rest.data, rest.len);
    }
    fanout_calls_run(r, "GET", calls, nodes->count);
    if (!st[0].done) {
        store_audit_pos pos;
        bool has = st[0].cursor[0] && audit_cursor_parse(st[0].cursor, &pos);
        int rc = audit_page(r, &q, has ? &pos : NULL, limit + st[0].skip, &local);
        if (rc < 0) {
            reply_error(r, 500, "internal", "reading the audit log failed (%d)", rc);
            goto out;
        }
    }
    /* each node's page: its entries after skip, and its next cursor */
    const json_value **lists = arena_alloc(&ar, n * sizeof *lists);
    const char **next = arena_alloc(&ar, n * sizeof *next);
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        lists[i] = NULL;
        next[i] = NULL;
        if (st[i].done) continue;
        const buf *b = i ? &calls[i - 1].out : &local;
        if (i && fanout_call_failed(r, &calls[i - 1], p, &ar)) goto out;
        char *t = arena_alloc(&ar, b->len + 1);
        memcpy(t, b->data ? b->data : "", b->len);
        t[b->len] = '\0';
        json_value *root = arena_alloc(&ar, sizeof *root);
        json_error jerr;
        if (json_parse(p, &ar, t, b->len, root, &jerr) != 0 || !(lists[i] = json_object_get(root, "entries", 7)) ||
            lists[i]->type != JSON_ARRAY) {
            reply_error(r, 502, "shard_error", "ingest node %s: its audit answer has no 'entries' array",
                        i ? calls[i - 1].base : "(this node)");
            goto out;
        }
        const json_value *c = json_object_get(root, "cursor", 6);
        next[i] = json_is_string(c) ? c->str : NULL;
        if (lists[i]->len > st[i].skip) total += lists[i]->len - st[i].skip;
    }
    /* a node with more may still hold entries as new as its cursor: others' older entries wait */
    char bound[64][40];
    uint32_t nb = 0;
    uint32_t bound_node[64];
    for (uint32_t i = 0; i < n && nb < 64; i++)
        if (next[i]) {
            cursor_at(next[i], bound[nb]);
            bound_node[nb++] = i;
        }
    rows = mamori_xcalloc(total ? total : 1, sizeof *rows);
    size_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!lists[i]) continue;
        for (uint32_t j = st[i].skip; j < lists[i]->len; j++) {
            const json_value *e = &lists[i]->items[j];
            const json_value *at = json_object_get(e, "at", 2);
            if (!json_is_string(at)) continue;
            rows[k++] = (audit_row){e, at->str, at->len, i, j};
        }
    }
    qsort(rows, k, sizeof *rows, audit_row_cmp);
    uint32_t *taken = arena_alloc(&ar, n * sizeof *taken);
    memset(taken, 0, n * sizeof *taken);
    buf_clear(&r->body);
    buf_puts(&r->body, "{\"entries\":[");
    uint32_t listed = 0;
    for (size_t x = 0; x < k && listed < limit; x++) {
        bool safe = true;
        for (uint32_t b = 0; b < nb && safe; b++)
            safe = bound_node[b] == rows[x].node || !bound[b][0] ||
                   memcmp(rows[x].at, bound[b], MAMORI_MIN(rows[x].at_len, (uint32_t)strlen(bound[b]))) >= 0;
        if (!safe) break; /* sorted newest first: everything after is older still */
        if (listed++) buf_putc(&r->body, ',');
        json_write_value(&r->body, rows[x].v);
        taken[rows[x].node]++;
    }
    buf_putc(&r->body, ']');
    /* the next states */
    bool more = false;
    for (uint32_t i = 0; i < n; i++) {
        if (st[i].done || !lists[i]) continue;
        uint32_t avail = lists[i]->len > st[i].skip ? lists[i]->len - st[i].skip : 0;
        if (taken[i] < avail) {
            st[i].skip += taken[i];
        } else if (next[i]) {
            snprintf(st[i].cursor, sizeof st[i].cursor, "%.33s", next[i]);
            st[i].skip = 0;
        } else {
            st[i].done = true;
        }
        more = more || !st[i].done;
    }
    if (more) {
        buf_puts(&r->body, ",\"cursor\":\"" AUDIT_CURSOR_PREFIX);
        for (uint32_t i = 0; i < n; i++)
            buf_printf(&r->body, "%s%s,%u", i ? ":" : "", st[i].done ? "x" : st[i].cursor[0] ? st[i].cursor : "-",
                       st[i].skip);
        buf_putc(&r->body, '"');
    }
    buf_putc(&r->body, '}');
    r->rows = listed;
    reply_json(r, 200);
out:
    free(rows);
    evhttp_clear_headers(&params);
    buf_fini(&local);
    buf_fini(&rest);
    arena_fini(&ar);
    json_parser_destroy(p);
    fanout_calls_free(calls, nodes->count);
    free(st);
}
