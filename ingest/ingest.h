/* ingest/ingest.h — the agent-facing front end: io_uring (one ring per thread, multishot
 * accept, provided receive buffers), TLS 1.3 with mutual authentication via OpenSSL memory
 * BIOs, agent protocol v1 (docs/protocol.md), normalization, publication to the bus, and
 * ACKs once the bus reports a batch durable. SSL and io_uring types never leave ingest/. */
#ifndef MAMORI_INGEST_H
#define MAMORI_INGEST_H

#include "bus/bus.h"
#include "core/base.h"
#include "core/config.h"

typedef struct ingest ingest;

/* Looks up an agent's highest durable batch seq (0 if unknown). Called on an ingest thread
 * at an agent's first HELLO since start-up; must be fast (the store answers from cache). */
typedef int (*ingest_durable_seq_fn)(void *ctx, uint64_t tenant_hash, uint64_t agent_hash, uint64_t *seq);

/* ---- remote response (docs/response.md §2): what ingest tells the response service and
 * how the service sends COMMAND frames. Ingest owns the connections; the service owns the
 * actions and their persistence. */

/* Where an agent's current connection lives: valid until an OFFLINE event with the same
 * route (a stale route is harmless: ingest drops what is sent to it). */
typedef struct ingest_route {
    uint32_t thread, slot, gen;
} ingest_route;

enum ingest_agent_event_kind {
    INGEST_AGENT_ONLINE = 1, /* HELLO accepted and WELCOME sent */
    INGEST_AGENT_OFFLINE,    /* that connection ended */
    INGEST_AGENT_ISOLATION,  /* the agent reported another isolation state (heartbeat) */
    INGEST_AGENT_RESULT,     /* a RESULT for a command sent on this connection */
};
#define INGEST_CAP_RESPONSE 1u
#define INGEST_CAP_ISOLATION 2u
enum ingest_result_status { INGEST_RESULT_RUNNING = 0, INGEST_RESULT_SUCCEEDED, INGEST_RESULT_FAILED };
#define INGEST_ISOLATION_UNKNOWN (-1) /* otherwise 0 none, 1 isolated */

typedef struct ingest_agent_event {
    enum ingest_agent_event_kind kind;
    const char *tenant, *agent_id;
    uint64_t tenant_hash, agent_hash;
    ingest_route route;
    int64_t at_us;                 /* wall clock */
    int isolation;                 /* ONLINE (HELLO), ISOLATION: reported state or UNKNOWN */
    /* ONLINE */
    uint32_t caps;                 /* INGEST_CAP_* from HELLO.capabilities */
    const char *hello;             /* the HELLO payload (JSON object) */
    size_t hello_len;
    const char *peer;              /* the agent's address, ip:port */
    const char *server_address;    /* the local address the agent connected to, ip:port */
    /* RESULT */
    uint64_t cmd_no;
    const uint8_t *action_id;      /* 16 bytes: the id sent with that command number */
    enum ingest_result_status status;
    const char *output;            /* compact JSON, or NULL */
    size_t output_len;
    const char *error;             /* failed: the reason, or NULL */
    size_t error_len;
    char *file;                    /* fetch_file succeeded: the verified bytes (malloc'd); the
                                    * callee TAKES them (frees with free) — set to NULL to say so */
    size_t file_len;
    uint8_t file_sha256[32];
} ingest_agent_event;
/* Called on an ingest thread; everything is borrowed for the call (except file): copy
 * and return quickly, never block on I/O. */
typedef void (*ingest_agent_event_fn)(void *ctx, ingest_agent_event *ev);
/* The isolation the server wants the agent to enforce (WELCOME.isolation): 0 none, 1
 * isolated. Called on an ingest thread at HELLO: must answer from memory. */
typedef int (*ingest_isolation_fn)(void *ctx, uint64_t tenant_hash, uint64_t agent_hash);

typedef struct ingest_options {
    const mamori_config *cfg; /* borrowed; must outlive the ingest */
    bus *bus;                 /* borrowed */
    ingest_durable_seq_fn durable_seq;
    void *durable_seq_ctx;
    ingest_agent_event_fn on_agent_event; /* may be NULL: no response service */
    ingest_isolation_fn desired_isolation; /* may be NULL: always "none" */
    void *response_ctx;
} ingest_options;

/* Hands a COMMAND to the connection at route, through its thread's mailbox (eventfd
 * wakeup). payload is copied. The thread writes the frame if that connection is still the
 * one at route, is past HELLO with the response capability, and has not been sent this
 * command number already; otherwise it drops it (the service resends on the next ONLINE).
 * fetch/max_bytes describe what RESULT chunks may bring. */
void ingest_send_command(ingest *in, const ingest_route *route, uint64_t cmd_no, const uint8_t action_id[16],
                         bool fetch, uint64_t max_bytes, const char *payload, size_t len);

/* Loads the TLS material and binds the listening sockets (so the port is known and
 * errors surface before threads start). Errors are written to err. */
int ingest_create(const ingest_options *opt, ingest **out, char *err, size_t err_len) MAMORI_WUR;
/* Starts the io_uring threads. */
int ingest_start(ingest *in) MAMORI_WUR;
/* The bound port (useful when the configured port is 0). */
uint16_t ingest_port(const ingest *in);
/* Stops accepting, says CLOSE "server shutting down" to every agent, flushes briefly and
 * joins the threads. Batches already published stay with the bus. */
void ingest_stop(ingest *in);
void ingest_destroy(ingest *in);

/* Ack latency histogram bucket upper bounds, microseconds (the last bucket is open). */
#define INGEST_ACK_BUCKETS 14
extern const uint64_t ingest_ack_bucket_us[INGEST_ACK_BUCKETS - 1];

typedef struct ingest_stats {
    uint64_t connections_accepted;
    uint64_t connections_active;
    uint64_t connections_refused_full;
    uint64_t handshakes_failed;
    uint64_t agents_connected;   /* connections past HELLO */
    uint64_t protocol_violations;
    uint64_t superseded;
    uint64_t batches_received;
    uint64_t batches_acked;
    uint64_t events_accepted;
    uint64_t events_rejected;
    uint64_t bytes_received;     /* TLS bytes off the wire */
    uint64_t backpressure_pauses; /* times a connection stopped being read */
    uint64_t seq_gaps;           /* first batch after WELCOME skipped numbers */
    uint64_t ack_latency_us_sum; /* publish → durable, summed */
    uint64_t ack_latency_count;
    uint64_t ack_latency_buckets[INGEST_ACK_BUCKETS]; /* not cumulative */
    uint64_t events_rejected_invalid_json;  /* a line that is not JSON */
    uint64_t events_rejected_invalid_event; /* JSON the normalizer refused (not an object, duplicates, limits) */
    uint64_t commands_sent;
    uint64_t results_received;
    uint64_t results_unexpected; /* for a command not sent on that connection, or already final */
    uint64_t file_chunks;
    uint64_t files_rejected;     /* size or sha256 different from what the agent announced */
} ingest_stats;
void ingest_get_stats(ingest *in, ingest_stats *out);

/* What ingest knows about an agent since start-up (live state; the persisted registry is
 * the agents column family). */
typedef struct ingest_agent_info {
    char tenant[65];
    char agent_id[129];
    bool online;
    int64_t connected_since_us; /* wall clock of the current/last connection's WELCOME */
    int64_t last_seen_us;       /* wall clock of the last frame received */
    char address[64];           /* peer "ip:port" of the current/last connection */
    char version[65];           /* HELLO agent_version */
    uint64_t events_received;   /* accepted events since start-up */
    uint64_t batches_received;
    uint64_t durable_seq; /* highest acknowledged batch */
    uint64_t accepted_seq;
} ingest_agent_info;

/* Calls fn for every agent of `tenant` (NULL: all) seen since start-up, under the agent
 * registry lock: fn must be quick and must not call into ingest. fn returns non-zero to stop. */
typedef int (*ingest_agent_fn)(void *ctx, const ingest_agent_info *agent);
void ingest_list_agents(ingest *in, const char *tenant, ingest_agent_fn fn, void *ctx);
/* One agent; -ENOENT if ingest has not seen it since start-up. */
int ingest_get_agent(ingest *in, const char *tenant, const char *agent_id, ingest_agent_info *out) MAMORI_WUR;

#endif
