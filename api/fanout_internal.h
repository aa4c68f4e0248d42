/* api/fanout_internal.h — the pieces the fan-out files share (docs/scaling.md §6): one call per
 * store shard, run in parallel, and a failed call as this API's answer. */
#ifndef MAMORI_API_FANOUT_INTERNAL_H
#define MAMORI_API_FANOUT_INTERNAL_H

#include "internal.h"

#include <curl/curl.h>

typedef struct shard_call {
    uint32_t no;
    const char *base; /* the shard's URL */
    bool active;
    buf url, req, out;
    long status;
    bool ok; /* transport succeeded (any HTTP status) */
    char err[CURL_ERROR_SIZE + 1];
} shard_call;

/* One call per shard of api.shards, numbered and with empty buffers; fanout_calls_free. */
shard_call *fanout_calls_new(const api *a);
/* The same for another list of nodes (api.ingest_nodes). */
shard_call *fanout_calls_for(const config_list *nodes);
/* The one node of `nodes` answering 200 to method path (body may be NULL): its answer is this
 * API's; 404 when every node answers 404; a node failing otherwise is the answer (502…). */
void fanout_find_one(api_req *r, const config_list *nodes, const char *method, const char *path, const char *body,
                     size_t body_len, const char *what);
/* GET /v1/<collection>/<id> (id already checked) from the one node of `nodes` holding it,
 * "no <noun> <id>" when none does; content_type NULL: JSON. */
void fanout_get_by_id(api_req *r, const config_list *nodes, const char *collection, const char *noun, const char *id,
                      const char *content_type);
void fanout_calls_free(shard_call *calls, uint32_t n);
/* c->url = the shard's base URL (without a trailing '/') followed by path; marks c active. */
void fanout_call_url(shard_call *c, const char *path);
/* Runs the active calls of calls[0..n) at once (method, c->url, c->req as the body, the
 * caller's key forwarded), each bounded by api.shard_timeout_ms. */
void fanout_calls_run(api_req *r, const char *method, shard_call *calls, uint32_t n);
/* A shard's failure as this API's answer, naming the shard; false when the call is a 200. */
bool fanout_call_failed(api_req *r, const shard_call *c, json_parser *p, arena *ar);

#endif
