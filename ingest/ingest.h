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

typedef struct ingest_options {
    const mamori_config *cfg; /* borrowed; must outlive the ingest */
    bus *bus;                 /* borrowed */
    ingest_durable_seq_fn durable_seq;
    void *durable_seq_ctx;
} ingest_options;

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
