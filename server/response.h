/* server/response.h — the response service of mamorid (docs/response.md): one thread that
 * owns the life of every action after it is created — delivery to online agents through
 * ingest, results and fetched files into the store, expiry, the agent registry records,
 * isolation drift alerts — and the automatic response of rules. It wires store (actions,
 * files, registry, audit) to ingest (connections) and is fed through a mailbox: ingest
 * threads, API threads and detection threads post to it and never wait for it. */
#ifndef MAMORI_SERVER_RESPONSE_H
#define MAMORI_SERVER_RESPONSE_H

#include "core/config.h"
#include "ingest/ingest.h"
#include "store/store.h"

typedef struct response_svc response_svc;

/* Loads the desired isolation of every agent (WELCOME answers from memory). */
int response_create(const mamori_config *cfg, store *db, response_svc **out, char *err, size_t err_len) MAMORI_WUR;
/* Ingest must exist before the thread starts (it sends through it). */
void response_set_ingest(response_svc *r, ingest *in);
int response_start(response_svc *r) MAMORI_WUR;
/* Stops the thread (messages still queued are dropped: what they report is redone on the
 * next connection). Call before ingest_destroy. */
void response_stop(response_svc *r);
void response_destroy(response_svc *r);

/* ingest_options.on_agent_event / desired_isolation (ctx = the service). */
void response_on_agent_event(void *ctx, ingest_agent_event *ev);
int response_desired_isolation(void *ctx, uint64_t tenant_hash, uint64_t agent_hash);
/* api_options.action_created: an action was persisted (queued); deliver it if its agent is
 * online. desired_isolation: what an isolate/release set (STORE_ISOLATION_UNKNOWN: none). */
void response_action_created(void *ctx, const store_action *a, int desired_isolation);

/* Automatic response (x-mamori: {response: [...]}): asks for `action` on the agent whose event
 * raised an alert of rule_id. Applies the tenant policy (allowed actions, rate) and creates
 * the action with actor "rule:<rule_id>", or writes a mamori-response-suppressed alert.
 * pid/entity_id: the triggering process (kill_process). Called on a detection thread;
 * persists on the response thread. */
void response_auto_request(response_svc *r, const char *tenant, const char *agent_id, const char *rule_id,
                           const char *action, int64_t pid, const char *entity_id, const char *host_name);

typedef struct response_stats {
    uint64_t actions_delivered, results, files_stored, expired, drift_alerts, auto_created, auto_suppressed;
    uint64_t store_errors, results_late;
} response_stats;
void response_get_stats(response_svc *r, response_stats *out);
/* Prometheus text (mamori_response_*). */
void response_write_metrics(void *ctx, buf *out);

#endif
