/* server/response_internal.h — private to server/response*.c: the service object, its
 * mailbox messages and per-agent state. */
#ifndef MAMORI_SERVER_RESPONSE_INTERNAL_H
#define MAMORI_SERVER_RESPONSE_INTERNAL_H

#include "response.h"

#include <pthread.h>
#include <stdatomic.h>

#include "core/arena.h"
#include "core/json.h"

enum { RESP_MSG_CREATED = 100, RESP_MSG_AUTO };
/* Automatic requests are refused while this many messages wait (ingest's and the API's never
 * are: they are bounded by connections and pending actions). */
#define RESP_AUTO_QUEUE_MAX 10000u

typedef struct resp_msg {
    struct resp_msg *next;
    int kind; /* enum ingest_agent_event_kind or RESP_MSG_* */
    uint64_t tenant_hash, agent_hash;
    char tenant[65], agent_id[129];
    ingest_route route;
    int64_t at_us;
    int isolation;
    uint32_t caps;
    char peer[64], server_address[64];
    uint64_t cmd_no;
    uint8_t action_id[STORE_ACTION_ID_BYTES];
    int status;
    char *text; /* ONLINE: HELLO; RESULT: output JSON */
    size_t text_len;
    char *error;
    size_t error_len;
    char *file;
    size_t file_len;
    uint8_t file_sha256[STORE_SHA256_BYTES];
    /* RESP_MSG_AUTO */
    char rule_id[160], action[STORE_ACTION_NAME_MAX + 1], entity_id[160], host_name[160];
    int64_t pid;
} resp_msg;

typedef struct resp_agent {
    uint64_t tenant_hash, agent_hash;
    char tenant[65], agent_id[129];
    int desired; /* under map_mu */
    int64_t desired_at_us;
    /* response thread only */
    bool online;
    ingest_route route;
    uint32_t caps;
    char peer[64], server_address[64];
    char version[65];
    char host_name[160];
    char *host_json, *caps_json; /* from HELLO, owned */
    int reported;
    int64_t reported_at_us;
    int64_t first_seen_us, last_seen_us;
    int64_t drift_since_us; /* 0: no drift */
    bool drift_alerted;
} resp_agent;

typedef struct resp_rate {
    uint64_t tenant_hash;
    int64_t window_start_us;
    uint32_t count;
    uint64_t suppressed_rule_hash; /* one suppression alert per rule and window */
} resp_rate;

struct response_svc {
    const mamori_config *cfg;
    store *db;
    ingest *ingest;
    pthread_t thread;
    bool started, stopping;
    pthread_mutex_t mu; /* mailbox */
    pthread_cond_t cv;
    resp_msg *head, *tail;
    uint64_t queued;
    pthread_mutex_t map_mu; /* the agent map and each agent's desired state */
    resp_agent **agents;
    uint32_t agent_count, agent_cap;
    uint32_t *agent_table;
    uint32_t agent_mask;
    /* response thread only */
    json_parser *parser;
    arena scratch;
    bool wal_dirty; /* transitions written since the last store_sync_wal */
    struct expired_list *expired;
    pthread_mutex_t auto_mu;
    resp_rate *auto_rates;
    uint32_t auto_rate_count;
    struct {
        _Atomic uint64_t actions_delivered, results, files_stored, expired, drift_alerts, auto_created,
            auto_suppressed, store_errors, results_late;
    } stats;
};

/* Caller holds map_mu. */
resp_agent *resp_agent_find(response_svc *r, uint64_t th, uint64_t ah, bool create);
void resp_audit(store_audit *au, const store_action *a, const char *what, const char *result, int64_t at_us,
                const char *actor);
/* response_agents.c: the registry record, isolation reports, drift, automatic response. */
/* At start-up, before ingest: registry records still saying online (a crash) say offline. */
int resp_registry_start(response_svc *r) MAMORI_WUR;
void resp_agent_online(response_svc *r, resp_agent *ag, const resp_msg *m);
void resp_agent_offline(response_svc *r, resp_agent *ag, int64_t at_us);
void resp_agent_reported(response_svc *r, resp_agent *ag, int reported, int64_t at_us);
void resp_drift_check(response_svc *r, int64_t now_us);
void resp_auto_handle(response_svc *r, const resp_msg *m);
/* Appends m to the service's mailbox and wakes its thread; r->mu held (response.c). */
void resp_enqueue_locked(response_svc *r, resp_msg *m);
void resp_deliver_new(response_svc *r, resp_agent *ag);

#endif
