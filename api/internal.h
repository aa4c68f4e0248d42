/* api/internal.h — private to api/: the server object, per-thread state and counters,
 * request context, and the handlers. */
#ifndef MAMORI_API_INTERNAL_H
#define MAMORI_API_INTERNAL_H

#include "api/api.h"

#include "core/buf.h"
#include "core/json.h"
#include "search/search.h"

#include <pthread.h>
#include <stdatomic.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct evconnlistener;
struct ssl_ctx_st;

enum api_endpoint {
    EP_OTHER = 0, EP_HEALTHZ, EP_READYZ, EP_METRICS, EP_OPENAPI, EP_SEARCH, EP_EVENT, EP_TREE, EP_AGENTS, EP_AGENT,
    EP_KEYS, EP_KEY, EP_ALERTS, EP_ALERT, EP_RULES_TEST, EP_AGENT_ACTIONS, EP_ACTION, EP_FILE, EP_AUDIT, EP_COUNT
};

#define API_STATUS_SLOTS 16
#define API_LATENCY_BUCKETS 14

/* Counters of one thread, summed at scrape time. */
typedef struct api_counters {
    _Atomic uint64_t requests[EP_COUNT][API_STATUS_SLOTS];
    _Atomic uint64_t latency_bucket[EP_COUNT][API_LATENCY_BUCKETS + 1]; /* last: +Inf */
    _Atomic uint64_t latency_us_sum[EP_COUNT];
    _Atomic uint64_t search_refs, search_fetched, search_scanned, search_parsed, search_rows;
    _Atomic uint64_t search_deadline, rate_limited, overloaded, auth_failed, forbidden;
} api_counters;

typedef struct api_thread {
    struct api *api;
    uint32_t no;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    api_counters counters;
} api_thread;

typedef struct rate_bucket {
    char id[API_KEY_ID_CHARS + 1];
    double tokens;
    int64_t last_us;
} rate_bucket;

struct api {
    const mamori_config *cfg;
    store *db;
    struct ingest *ingest;
    struct bus *bus;
    struct ssl_ctx_st *ssl;
    int fd;
    uint16_t port;
    api_thread *threads;
    uint32_t thread_count;
    bool started;
    atomic_uint inflight;
    search_limits limits;
    /* per-key token buckets (open addressing by key id) */
    pthread_mutex_t rate_mu;
    rate_bucket *buckets;
    uint32_t bucket_mask, bucket_count;
    /* agent id cache: agent hash -> id, learned from stored events */
    int64_t started_us;
    void (*metrics_extra)(void *ctx, buf *out);
    void *metrics_extra_ctx;
    void (*action_created)(void *ctx, const store_action *a, int desired_isolation);
    void *action_ctx;
    void (*response_metrics)(void *ctx, buf *out);
};

/* What the handlers know about a request. */
typedef struct api_req {
    api *a;
    api_thread *t;
    struct evhttp_request *req;
    enum api_endpoint ep;
    const char *path; /* decoded path (owned by the uri object) */
    char tenant[80];
    char key_id[API_KEY_ID_CHARS + 1];
    enum api_role role;
    bool authed;
    int status;
    buf body; /* the response */
    /* for the access log */
    const char *plan;
    uint64_t rows;
} api_req;

/* Replies (JSON). reply_error writes {"error":{"code","message"[,"position"][,"cursor"]}}. */
void reply_json(api_req *r, int status);
void reply_error(api_req *r, int status, const char *code, const char *fmt, ...) MAMORI_PRINTF(4, 5);
void reply_error_at(api_req *r, int status, const char *code, int32_t position, const char *cursor,
                    const char *message);

/* auth.c */
/* Resolves the Bearer key into r (tenant, role, key id); replies 401 and returns false if not. */
bool auth_request(api_req *r);
/* 403 unless the key's role is at least min. */
bool require_role(api_req *r, enum api_role min);
/* Token bucket of the key; false (429 sent) when empty. */
bool rate_allow(api_req *r);
void sha256_hex(const char *s, size_t n, char out[65]);

/* handlers */
void handle_search(api_req *r);
void handle_event(api_req *r, const char *id);
void handle_tree(api_req *r);
void handle_agents(api_req *r);
void handle_agent(api_req *r, const char *id);
void handle_keys(api_req *r, int method);
void handle_key_delete(api_req *r, const char *id);
void handle_metrics(api_req *r);
/* alerts.c */
void handle_alerts(api_req *r);
void handle_alert_get(api_req *r, const char *id);
void handle_alert_patch(api_req *r, const char *id);
/* rules_test.c */
void handle_rules_test(api_req *r);
/* POST /v1/rules/test's request checked and its rules compiled (rules_test.c), shared by the
 * local run and the fan-out (fanout_rules.c). */
typedef struct rules_req {
    json_parser *p;
    arena ar;
    buf text; /* the body as received */
    const json_value *body;
    int64_t from_us, to_us;
    uint32_t limit;
    struct detect_loader *loader;
    struct detect_ruleset *rs;
    struct correlate_set *corr;
    const struct detect_report *report;
} rules_req;
/* false when the request was answered (an error naming the field or the rule's problems);
 * rules_test_release in every case. */
bool rules_test_prepare(api_req *r, rules_req *q);
void rules_test_release(rules_req *q);
/* The retro-hunt on every store shard of api.shards, merged (fanout_rules.c). */
void fanout_rules_test(api_req *r);

/* handlers.c: an optional RFC 3339 time member of a request body (false after replying 400),
 * and the default end of a search's range (now + the clock skew ingest accepts). */
bool api_get_time(api_req *r, const json_value *obj, const char *name, int64_t *out, bool *present);
int64_t api_default_to(const api *a);
/* fanout.c, fanout_search.c: an API with api.shards answers these from the store shards (docs/scaling.md 6). */
void fanout_search(api_req *r);
void fanout_event(api_req *r, const char *id);
void fanout_alerts(api_req *r);
void fanout_alert_get(api_req *r, const char *id);
void fanout_tree(api_req *r);
void fanout_alert_patch(api_req *r, const char *id);
/* GET /v1/agents and /v1/agents/{id}: the shards' agents (each agent's batches are on one
 * shard), merged by agent hash. */
void fanout_agents(api_req *r);
void fanout_agent(api_req *r, const char *id);
/* Remote response behind api.ingest_nodes (fanout_response.c): actions are created, listed
 * and read on the ingest node holding the agent; GET /v1/agents/{id} is its live record. */
void fanout_action_create(api_req *r, const char *agent_id);
void fanout_agent_actions(api_req *r, const char *agent_id);
void fanout_action_get(api_req *r, const char *id);
void fanout_agent_live(api_req *r, const char *agent_id);
void fanout_file_get(api_req *r, const char *sha256);

/* fanout_search.c internals, for tests/unit/api/test_fanout.c. */
typedef struct fanout_key {
    int64_t ts;
    uint64_t agent, seq;
    uint32_t index;
} fanout_key;

typedef struct fanout_shard {
    char *cursor; /* the shard cursor the current page was fetched at ("" = the start) */
    uint64_t skip; /* rows of that page already returned */
    bool done;     /* nothing more on this shard */
    /* the fetched page */
    bool fetched;
    arena ar;
    json_value root;
    const json_value *rows;
    uint64_t pos;
    const char *next; /* its cursor, NULL at the end (in ar) */
} fanout_shard;

typedef struct fanout_cursor {
    uint64_t hash;
    int64_t from_us, to_us;
    char mode;
    uint64_t n;
} fanout_cursor;

/* The storage key of an event row, or of a sequence row's last event (its mamori.event_id). */
bool fanout_event_key(const json_value *row, bool sequence, fanout_key *k);
int fanout_key_cmp(const fanout_key *a, const fanout_key *b);
/* Merged cursor: m1:HASH:FROM:TO:MODE:N, then for mode s per shard :SKIP,STATE (STATE "-"
 * start, "x" done, else the shard's own cursor). fanout_cursor_read allocates st[i].cursor
 * (free them); -EINVAL for anything that is not such a cursor for this many shards. */
void fanout_cursor_write(buf *out, const fanout_cursor *c, const fanout_shard *st, uint32_t shards);
int fanout_cursor_read(const char *text, fanout_cursor *c, fanout_shard *st, uint32_t shards);

/* actions.c (remote response) */
void handle_action_create(api_req *r, const char *agent_id);
void handle_action_get(api_req *r, const char *id);
void handle_agent_actions(api_req *r, const char *agent_id);
void handle_file_get(api_req *r, const char *sha256);
void handle_audit(api_req *r);
/* GET /v1/audit's parameters (actions.c), shared with the merge behind api.ingest_nodes. */
typedef struct audit_query {
    int64_t from, to;
    uint32_t limit;
    const char *actor, *agent, *action, *cursor; /* borrowed from the parsed parameters */
} audit_query;
struct evkeyvalq;
/* false when answered (400 naming the parameter); clear params (evhttp_clear_headers) always. */
bool audit_query_parse(api_req *r, struct evkeyvalq *params, audit_query *q);
/* A local page cursor ("%016x.%016x"). */
bool audit_cursor_parse(const char *v, store_audit_pos *pos);
/* One page of this node's audit log into out as {"entries":[…][,"cursor":"…"]}; returns the
 * entries listed or a negative errno. */
int audit_page(api_req *r, const audit_query *q, const store_audit_pos *after, uint32_t limit, buf *out);
/* The audit log of this node and every api.ingest_nodes node, merged newest first
 * (fanout_response.c). */
void fanout_audit(api_req *r);
void api_render_action(buf *o, const store_action *a);
/* Appends an audit entry for this request (actor "key:<id>"); a failure is logged. */
void api_audit(api_req *r, const char *what, const char *target, const char *detail, size_t detail_len,
               const char *result);
/* A non-JSON reply (GET /v1/files). */
void reply_bytes(api_req *r, int status, const char *content_type, const void *data, size_t len);

/* Body as a JSON object in a; NULL after replying 400 on an error. */
const json_value *read_json_body(api_req *r, json_parser *p, arena *a, buf *text);
/* Checks of a request's parts, each answering 400 naming what is wrong when it returns false
 * (handlers.c): an agent id (certificate CN), an event id, a JSON body's optional "limit"
 * (1 to api.max_result_rows; *limit kept when absent). */
bool api_agent_id_ok(api_req *r, const char *id);
bool api_event_id_ok(api_req *r, const char *id);
bool api_body_limit(api_req *r, const json_value *body, uint32_t *limit);
const json_value *search_body_query(api_req *r, const json_value *body);
/* Query-string parameter (decoded, owned by the caller's evkeyvalq). */
const char *query_param(api_req *r, void *params, const char *name);

extern const unsigned char api_openapi_json[];
extern const size_t api_openapi_json_len;

#endif
