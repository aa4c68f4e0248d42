/* api/fanout_response.c — remote response behind `api.ingest_nodes` (split roles,
 * docs/scaling.md §6). An agent's connection, its registry record and the response service
 * that delivers its actions live in the ingest process it connects to, on that process's own
 * store; an API node therefore creates, lists and reads actions there: the agent's ingest
 * node is the one where it is online, else the one whose registry saw it last. Answers
 * (201, 4xx naming the field, 409 queue full…) are that node's, relayed as they are; fetched
 * files are read from the node holding them. */
#include "fanout_internal.h"

#include "core/pki.h"

#include <event2/http.h>
#include <stdio.h>
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

static bool agent_id_ok(api_req *r, const char *id)
{
    if (id && pki_agent_id_valid(id)) return true;
    reply_error(r, 400, "bad_request", "'%.80s' is not an agent id", id ? id : "");
    return false;
}

void fanout_action_create(api_req *r, const char *agent_id)
{
    if (!agent_id_ok(r, agent_id)) return;
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
    if (!agent_id_ok(r, agent_id)) return;
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
    if (!agent_id_ok(r, agent_id)) return;
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
