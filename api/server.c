/* api/server.c — the HTTPS front: one listening socket shared by api.threads event loops
 * (libevent evhttp, TLS through OpenSSL bufferevents), routing, the limits every request
 * meets before a handler runs (header and body size, idle time, authentication, per-key
 * rate, concurrent heavy requests), JSON errors, counters and the access log. */
#include "internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MOD "api"

static const int status_codes[API_STATUS_SLOTS] = {200, 201, 204, 400, 401, 403, 404, 405,
                                                   408, 413, 429, 500, 503, 504, 409, 0};
static const double latency_bounds_s[API_LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                             0.25,  0.5,    1,     2.5,  5,     10,  30};

static unsigned status_slot(int status)
{
    for (unsigned i = 0; i < API_STATUS_SLOTS; i++)
        if (status_codes[i] == status) return i;
    return API_STATUS_SLOTS - 1; /* other */
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Internal Server Error";
    }
}

void reply_json(api_req *r, int status)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
    if (r->body.len) evbuffer_add(out, r->body.data, r->body.len);
    evhttp_send_reply(r->req, status, reason(status), NULL);
    r->status = status;
}

void reply_bytes(api_req *r, int status, const char *content_type, const void *data, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
    if (len) evbuffer_add(out, data, len);
    evhttp_send_reply(r->req, status, reason(status), NULL);
    r->status = status;
}

/* "/v1/agents/{id}/actions": the id, copied into out; NULL if path is not that. */
static const char *agent_actions_id(const char *path, char *out, size_t cap)
{
    static const char pre[] = "/v1/agents/", suf[] = "/actions";
    size_t n = strlen(path), pl = sizeof pre - 1, sl = sizeof suf - 1;
    if (n <= pl + sl || strncmp(path, pre, pl) != 0 || strcmp(path + n - sl, suf) != 0) return NULL;
    size_t idl = n - pl - sl;
    if (idl >= cap || memchr(path + pl, '/', idl)) return NULL;
    memcpy(out, path + pl, idl);
    out[idl] = '\0';
    return out;
}

void reply_error_at(api_req *r, int status, const char *code, int32_t position, const char *cursor, const char *message)
{
    buf_clear(&r->body);
    buf_puts(&r->body, "{\"error\":{\"code\":");
    json_write_string(&r->body, code, strlen(code));
    buf_puts(&r->body, ",\"message\":");
    json_write_string(&r->body, message, strlen(message));
    if (position >= 0) buf_printf(&r->body, ",\"position\":%d", position);
    if (cursor && cursor[0]) {
        buf_puts(&r->body, ",\"cursor\":");
        json_write_string(&r->body, cursor, strlen(cursor));
    }
    buf_puts(&r->body, "}}");
    reply_json(r, status);
}

void reply_error(api_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_error_at(r, status, code, -1, NULL, msg);
}

const char *query_param(api_req *r, void *params, const char *name)
{
    (void)r;
    return evhttp_find_header((struct evkeyvalq *)params, name);
}

const json_value *read_json_body(api_req *r, json_parser *p, arena *a, buf *text)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t n = evbuffer_get_length(in);
    if (n > r->a->cfg->api.max_body_bytes) { /* evhttp enforces it too */
        reply_error(r, 413, "body_too_large", "request body of %zu bytes is over the %u-byte limit", n,
                    r->a->cfg->api.max_body_bytes);
        return NULL;
    }
    buf_clear(text);
    buf_reserve(text, n + 1);
    if (n) evbuffer_copyout(in, text->data, n);
    text->len = n;
    json_value *v = arena_alloc(a, sizeof *v);
    json_error jerr;
    if (n == 0) {
        reply_error(r, 400, "invalid_json", "request body is empty; send a JSON object");
        return NULL;
    }
    if (json_parse(p, a, text->data, text->len, v, &jerr) != 0) {
        reply_error_at(r, 400, "invalid_json", (int32_t)jerr.offset, NULL, jerr.msg);
        return NULL;
    }
    if (v->type != JSON_OBJECT) {
        reply_error(r, 400, "invalid_json", "request body must be a JSON object");
        return NULL;
    }
    return v;
}

/* ---- routing ---- */

static bool path_is(const char *path, const char *want) { return strcmp(path, want) == 0; }

static const char *path_tail(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0 || path[n] == '\0' || strchr(path + n, '/')) return NULL;
    return path + n;
}

static bool heavy_enter(api_req *r)
{
    unsigned prev = atomic_fetch_add(&r->a->inflight, 1);
    if (prev >= r->a->cfg->api.max_concurrent_requests) {
        atomic_fetch_sub(&r->a->inflight, 1);
        atomic_fetch_add_explicit(&r->t->counters.overloaded, 1, memory_order_relaxed);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "1");
        reply_error(r, 503, "overloaded", "%u requests are already running; retry shortly",
                    r->a->cfg->api.max_concurrent_requests);
        return false;
    }
    return true;
}

static void heavy_leave(api_req *r) { atomic_fetch_sub(&r->a->inflight, 1); }

static void route(api_req *r, int method, const char *path)
{
    const char *tail;
    if (path_is(path, "/healthz")) {
        r->ep = EP_HEALTHZ;
        if (method != EVHTTP_REQ_GET) goto bad_method;
        buf_puts(&r->body, "{\"status\":\"ok\"}");
        reply_json(r, 200);
        return;
    }
    if (path_is(path, "/readyz")) {
        r->ep = EP_READYZ;
        if (method != EVHTTP_REQ_GET) goto bad_method;
        buf_puts(&r->body, "{\"status\":\"ready\"}");
        reply_json(r, 200);
        return;
    }
    if (path_is(path, "/metrics")) {
        r->ep = EP_METRICS;
        if (method != EVHTTP_REQ_GET) goto bad_method;
        handle_metrics(r);
        return;
    }
    if (path_is(path, "/v1/openapi.json")) {
        r->ep = EP_OPENAPI;
        if (method != EVHTTP_REQ_GET) goto bad_method;
        buf_append(&r->body, (const char *)api_openapi_json, api_openapi_json_len);
        reply_json(r, 200);
        return;
    }
    if (strncmp(path, "/v1/", 4) != 0) {
        reply_error(r, 404, "not_found", "no such endpoint: %.200s", path);
        return;
    }
    /* everything under /v1/ needs a key */
    if (path_is(path, "/v1/search")) r->ep = EP_SEARCH;
    else if (path_tail(path, "/v1/events/")) r->ep = EP_EVENT;
    else if (path_is(path, "/v1/process-tree")) r->ep = EP_TREE;
    else if (path_is(path, "/v1/agents")) r->ep = EP_AGENTS;
    else if (path_tail(path, "/v1/agents/")) r->ep = EP_AGENT;
    else if (path_is(path, "/v1/keys")) r->ep = EP_KEYS;
    else if (path_tail(path, "/v1/keys/")) r->ep = EP_KEY;
    else if (path_is(path, "/v1/alerts")) r->ep = EP_ALERTS;
    else if (path_tail(path, "/v1/alerts/")) r->ep = EP_ALERT;
    else if (path_is(path, "/v1/rules/test")) r->ep = EP_RULES_TEST;
    else if (path_tail(path, "/v1/actions/")) r->ep = EP_ACTION;
    else if (path_tail(path, "/v1/files/")) r->ep = EP_FILE;
    else if (path_is(path, "/v1/audit")) r->ep = EP_AUDIT;
    char agent_id[256];
    const char *actions_of = agent_actions_id(path, agent_id, sizeof agent_id);
    if (actions_of) r->ep = EP_AGENT_ACTIONS;
    if (!auth_request(r)) return;
    if (!rate_allow(r)) return;
    switch (r->ep) {
    case EP_SEARCH:
        if (method != EVHTTP_REQ_POST) goto bad_method;
        if (!require_role(r, API_ROLE_VIEWER) || !heavy_enter(r)) return;
        if (r->a->cfg->api.shards.count) fanout_search(r);
        else handle_search(r);
        heavy_leave(r);
        return;
    case EP_EVENT:
        if (method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_VIEWER)) return;
        if (r->a->cfg->api.shards.count) fanout_event(r, path_tail(path, "/v1/events/"));
        else handle_event(r, path_tail(path, "/v1/events/"));
        return;
    case EP_TREE:
        if (method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_VIEWER) || !heavy_enter(r)) return;
        if (r->a->cfg->api.shards.count) fanout_tree(r);
        else handle_tree(r);
        heavy_leave(r);
        return;
    case EP_AGENTS:
        if (method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_VIEWER) || !heavy_enter(r)) return;
        if (r->a->cfg->api.shards.count || r->a->cfg->api.ingest_nodes.count) fanout_agents(r);
        else handle_agents(r);
        heavy_leave(r);
        return;
    case EP_AGENT:
        if (method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_VIEWER)) return;
        if (r->a->cfg->api.ingest_nodes.count) fanout_agent_live(r, path_tail(path, "/v1/agents/"));
        else if (r->a->cfg->api.shards.count) fanout_agent(r, path_tail(path, "/v1/agents/"));
        else handle_agent(r, path_tail(path, "/v1/agents/"));
        return;
    case EP_KEYS:
        if (method != EVHTTP_REQ_POST && method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_ADMIN)) return;
        handle_keys(r, method == EVHTTP_REQ_POST ? 1 : 0);
        return;
    case EP_KEY:
        if (method != EVHTTP_REQ_DELETE) goto bad_method;
        if (!require_role(r, API_ROLE_ADMIN)) return;
        handle_key_delete(r, path_tail(path, "/v1/keys/"));
        return;
    case EP_ALERTS:
        if (method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_VIEWER) || !heavy_enter(r)) return;
        if (r->a->cfg->api.shards.count) fanout_alerts(r);
        else handle_alerts(r);
        heavy_leave(r);
        return;
    case EP_ALERT:
        if (method == EVHTTP_REQ_GET) {
            if (!require_role(r, API_ROLE_VIEWER)) return;
            if (r->a->cfg->api.shards.count) fanout_alert_get(r, path_tail(path, "/v1/alerts/"));
            else handle_alert_get(r, path_tail(path, "/v1/alerts/"));
            return;
        }
        if (method != EVHTTP_REQ_PATCH) goto bad_method;
        if (!require_role(r, API_ROLE_ANALYST)) return;
        if (r->a->cfg->api.shards.count) fanout_alert_patch(r, path_tail(path, "/v1/alerts/"));
        else handle_alert_patch(r, path_tail(path, "/v1/alerts/"));
        return;
    case EP_RULES_TEST:
        if (method != EVHTTP_REQ_POST) goto bad_method;
        /* a retro-hunt reads like a search (and alerts nothing): analysts write rules */
        if (!require_role(r, API_ROLE_ANALYST) || !heavy_enter(r)) return;
        if (r->a->cfg->api.shards.count) fanout_rules_test(r);
        else handle_rules_test(r);
        heavy_leave(r);
        return;
    case EP_AGENT_ACTIONS:
        if (method == EVHTTP_REQ_POST) {
            if (!require_role(r, API_ROLE_RESPONDER)) return;
            if (r->a->cfg->api.ingest_nodes.count) fanout_action_create(r, actions_of);
            else handle_action_create(r, actions_of);
            return;
        }
        if (method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_VIEWER) || !heavy_enter(r)) return;
        if (r->a->cfg->api.ingest_nodes.count) fanout_agent_actions(r, actions_of);
        else handle_agent_actions(r, actions_of);
        heavy_leave(r);
        return;
    case EP_ACTION:
        if (method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_VIEWER)) return;
        if (r->a->cfg->api.ingest_nodes.count) fanout_action_get(r, path_tail(path, "/v1/actions/"));
        else handle_action_get(r, path_tail(path, "/v1/actions/"));
        return;
    case EP_FILE:
        if (method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_VIEWER) || !heavy_enter(r)) return;
        if (r->a->cfg->api.ingest_nodes.count) fanout_file_get(r, path_tail(path, "/v1/files/"));
        else handle_file_get(r, path_tail(path, "/v1/files/"));
        heavy_leave(r);
        return;
    case EP_AUDIT:
        if (method != EVHTTP_REQ_GET) goto bad_method;
        if (!require_role(r, API_ROLE_ADMIN) || !heavy_enter(r)) return;
        if (r->a->cfg->api.ingest_nodes.count) fanout_audit(r);
        else handle_audit(r);
        heavy_leave(r);
        return;
    default:
        reply_error(r, 404, "not_found", "no such endpoint: %.200s", path);
        return;
    }
    (void)tail;
bad_method:
    reply_error(r, 405, "method_not_allowed", "%.200s does not take this method", path);
}

static const char *method_name(int m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

/* A response leaves as several writes (TLS records); with Nagle's algorithm the later ones
 * wait for the client's delayed ACK, ~40 ms per request on keep-alive connections. Set
 * per request (the connection's fd is only known here; one cheap syscall). */
static void set_nodelay(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    int one = 1;
    if (fd >= 0) (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    api_thread *t = arg;
    int64_t start = clock_mono_us();
    set_nodelay(req);
    api_req r;
    memset(&r, 0, sizeof r);
    r.a = t->api;
    r.t = t;
    r.req = req;
    r.plan = "";
    buf_init(&r.body);
    int method = (int)evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    size_t path_len = 0;
    char *path = raw ? evhttp_uridecode(raw, 0, &path_len) : NULL;
    if (!path || strlen(path) != path_len) {
        reply_error(&r, 400, "bad_request", "malformed path");
    } else {
        route(&r, method, path);
    }
    if (!r.status) reply_error(&r, 500, "internal", "no reply");
    int64_t us = clock_mono_us() - start;
    api_counters *c = &t->counters;
    atomic_fetch_add_explicit(&c->requests[r.ep][status_slot(r.status)], 1, memory_order_relaxed);
    unsigned b = 0;
    while (b < API_LATENCY_BUCKETS && (double)us / 1e6 > latency_bounds_s[b]) b++;
    atomic_fetch_add_explicit(&c->latency_bucket[r.ep][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->latency_us_sum[r.ep], (uint64_t)us, memory_order_relaxed);
    /* structured access log: one line per request, never per event */
    char peer[64] = "-";
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(conn, &addr, &port);
        if (addr) snprintf(peer, sizeof peer, "%s:%u", addr, port);
    }
    LOG_INFO(MOD, "access method=%s path=%.120s status=%d ms=%.2f bytes=%zu tenant=%s key=%s peer=%s plan=%s rows=%llu",
             method_name(method), path ? path : "-", r.status, (double)us / 1000.0, r.body.len,
             r.tenant[0] ? r.tenant : "-", r.key_id[0] ? r.key_id : "-", peer, r.plan[0] ? r.plan : "-",
             (unsigned long long)r.rows);
    free(path);
    buf_fini(&r.body);
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    api *a = arg;
    SSL *ssl = SSL_new(a->ssl);
    if (!ssl) return NULL;
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void *thread_main(void *arg)
{
    api_thread *t = arg;
    event_base_dispatch(t->base);
    return NULL;
}

static int parse_listen(const char *listen_addr, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon = strrchr(listen_addr, ':');
    if (!colon || (size_t)(colon - listen_addr) >= sizeof host) return -EINVAL;
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen_addr), listen_addr);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) return -EINVAL;
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 2 || host[hl - 1] != ']') return -EINVAL;
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) return -EINVAL;
        *len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) return -EINVAL;
        *len = sizeof *s4;
    }
    return 0;
}

static void use_pthreads(void) { (void)evthread_use_pthreads(); }

int api_create(const api_options *opt, api **out, char *err, size_t err_len)
{
    *out = NULL;
    const mamori_config *cfg = opt->cfg;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, use_pthreads);
    api *a = mamori_xcalloc(1, sizeof *a);
    a->cfg = cfg;
    a->db = opt->db;
    a->ingest = opt->ingest;
    a->bus = opt->bus;
    a->metrics_extra = opt->metrics_extra;
    a->metrics_extra_ctx = opt->metrics_extra_ctx;
    a->action_created = opt->action_created;
    a->action_ctx = opt->action_ctx;
    a->response_metrics = opt->response_metrics;
    a->fd = -1;
    a->started_us = clock_wall_us();
    pthread_mutex_init(&a->rate_mu, NULL);
    a->bucket_mask = 1023;
    a->buckets = mamori_xcalloc(a->bucket_mask + 1, sizeof *a->buckets);
    search_limits_default(&a->limits);
    a->limits.max_result_rows = cfg->api.max_result_rows;
    a->limits.max_groups = cfg->api.max_groups;
    a->limits.max_sequence_keys = cfg->api.max_sequence_keys;
    a->limits.max_candidates = cfg->api.max_candidates;

    const char *cert = cfg->api.tls_cert && cfg->api.tls_cert[0] ? cfg->api.tls_cert : cfg->ingest.tls_cert;
    const char *key = cfg->api.tls_key && cfg->api.tls_key[0] ? cfg->api.tls_key : cfg->ingest.tls_key;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) goto ssl_fail;
    a->ssl = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, err_len, "api: certificate %s: %s", cert, ERR_reason_error_string(ERR_get_error()));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_len, "api: private key %s: %s", key, ERR_reason_error_string(ERR_get_error()));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (parse_listen(cfg->api.listen, &ss, &sl)) {
        snprintf(err, err_len, "api.listen '%s' is not ADDR:PORT", cfg->api.listen);
        goto fail;
    }
    a->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (a->fd < 0 || setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(a->fd, (struct sockaddr *)&ss, sl) != 0 || listen(a->fd, 1024) != 0) {
        snprintf(err, err_len, "api: cannot listen on %s: %s", cfg->api.listen, strerror(errno));
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    getsockname(a->fd, (struct sockaddr *)&bound, &bl);
    a->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    a->thread_count = cfg->api.threads;
    a->threads = mamori_xcalloc(a->thread_count, sizeof *a->threads);
    for (uint32_t i = 0; i < a->thread_count; i++) {
        api_thread *t = &a->threads[i];
        t->api = a;
        t->no = i;
        t->base = event_base_new();
        t->http = t->base ? evhttp_new(t->base) : NULL;
        struct evconnlistener *l =
            t->http ? evconnlistener_new(t->base, NULL, NULL, LEV_OPT_REUSEABLE, -1, a->fd) : NULL;
        if (!l || !evhttp_bind_listener(t->http, l)) {
            snprintf(err, err_len, "api: cannot set up event loop %u", i);
            goto fail;
        }
        evhttp_set_bevcb(t->http, make_bev, a);
        evhttp_set_gencb(t->http, on_request, t);
        evhttp_set_max_body_size(t->http, (ev_ssize_t)cfg->api.max_body_bytes);
        evhttp_set_max_headers_size(t->http, (ev_ssize_t)cfg->api.max_header_bytes);
        evhttp_set_timeout(t->http, (int)cfg->api.idle_timeout_s);
        /* an oversize body is read and dropped before the 413, so the client sees the answer */
        evhttp_set_flags(t->http, EVHTTP_SERVER_LINGERING_CLOSE);
        evhttp_set_allowed_methods(t->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_PUT |
                                                  EVHTTP_REQ_PATCH); /* others: 501 from libevent */
    }
    *out = a;
    return 0;
ssl_fail:
    snprintf(err, err_len, "api: TLS context: %s", ERR_reason_error_string(ERR_get_error()));
fail:
    api_destroy(a);
    return -EINVAL;
}

int api_start(api *a)
{
    for (uint32_t i = 0; i < a->thread_count; i++) {
        if (pthread_create(&a->threads[i].thread, NULL, thread_main, &a->threads[i]) != 0) {
            for (uint32_t k = 0; k < i; k++) {
                event_base_loopbreak(a->threads[k].base);
                pthread_join(a->threads[k].thread, NULL);
            }
            return -EAGAIN;
        }
    }
    a->started = true;
    LOG_INFO(MOD, "listening port=%u threads=%u", a->port, a->thread_count);
    return 0;
}

uint16_t api_bound_port(const api *a) { return a->port; }

void api_stop(api *a)
{
    if (!a || !a->started) return;
    for (uint32_t i = 0; i < a->thread_count; i++) event_base_loopbreak(a->threads[i].base);
    for (uint32_t i = 0; i < a->thread_count; i++) pthread_join(a->threads[i].thread, NULL);
    a->started = false;
}

void api_destroy(api *a)
{
    if (!a) return;
    api_stop(a);
    for (uint32_t i = 0; a->threads && i < a->thread_count; i++) {
        if (a->threads[i].http) evhttp_free(a->threads[i].http);
        if (a->threads[i].base) event_base_free(a->threads[i].base);
    }
    free(a->threads);
    if (a->fd >= 0) close(a->fd);
    if (a->ssl) SSL_CTX_free(a->ssl);
    free(a->buckets);
    pthread_mutex_destroy(&a->rate_mu);
    free(a);
}
