/* api/api.h — the HTTPS + JSON API of DESIGN §7: tenant-scoped API keys, search, events,
 * process trees, agents, alerts, keys, metrics and health. libevent's evhttp over OpenSSL
 * bufferevents; several threads, each with its own event loop, accept on one listening
 * socket, and a request (its query included) runs on the thread that accepted it.
 * libevent and OpenSSL types never leave api/. */
#ifndef MAMORI_API_H
#define MAMORI_API_H

#include "core/base.h"
#include "core/buf.h"
#include "core/config.h"
#include "store/store.h"

struct ingest;
struct bus;

typedef struct api api;

typedef struct api_options {
    const mamori_config *cfg; /* borrowed; outlives the api (its api.* and ingest.tls_*) */
    store *db;                /* borrowed */
    struct ingest *ingest;    /* borrowed, may be NULL: metrics only */
    struct bus *bus;          /* borrowed, may be NULL: metrics only */
    /* Appends more Prometheus text to GET /metrics (live detection's counters); may be NULL.
     * Called on an API thread; must be thread-safe. */
    void (*metrics_extra)(void *ctx, buf *out);
    void *metrics_extra_ctx;
    /* Remote response: told after an action was persisted (queued) so it is delivered;
     * may be NULL (actions then wait in the store). Called on an API thread; must not block.
     * desired_isolation: what an isolate/release set, or STORE_ISOLATION_UNKNOWN. */
    void (*action_created)(void *ctx, const store_action *a, int desired_isolation);
    void *action_ctx;
    void (*response_metrics)(void *ctx, buf *out); /* appended to GET /metrics (ctx = action_ctx) */
} api_options;

/* Loads the certificate and binds the socket (so the port is known and errors surface
 * before threads start); errors are written to err. */
int api_create(const api_options *opt, api **out, char *err, size_t err_len) MAMORI_WUR;
int api_start(api *a) MAMORI_WUR;
uint16_t api_bound_port(const api *a);
/* Stops the loops (requests being answered finish first) and joins the threads. */
void api_stop(api *a);
void api_destroy(api *a);

/* ---- API keys (also used offline by `mamorictl keys create --data DIR`) ---- */

enum api_role { API_ROLE_VIEWER = 1, API_ROLE_ANALYST, API_ROLE_RESPONDER, API_ROLE_ADMIN };
int api_role_parse(const char *name, enum api_role *out) MAMORI_WUR;
const char *api_role_name(enum api_role r);

#define API_KEY_CHARS 67 /* "mk_" + 64 hex */
#define API_KEY_ID_CHARS 16

/* Creates a random 256-bit key for tenant with role, stores only its SHA-256 hash in meta
 * ("apikey/<hex>" → {id, tenant, role, name, created}), and returns the key text (shown
 * once) and its id. */
int api_key_create(store *db, const char *tenant, enum api_role role, const char *name,
                   char key_out[API_KEY_CHARS + 1], char id_out[API_KEY_ID_CHARS + 1]) MAMORI_WUR;

#endif
