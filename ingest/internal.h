/* ingest/internal.h — private to ingest/: the thread, connection and agent-registry types
 * shared by loop.c (io_uring), conn.c (TLS + protocol), batch.c (EVENTS), registry.c. */
#ifndef MAMORI_INGEST_INTERNAL_H
#define MAMORI_INGEST_INTERNAL_H

#include "ingest.h"

#include <liburing.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <zstd.h>

#include "core/buf.h"
#include "core/event.h"
#include "core/frame.h"
#include "core/json.h"

#define INGEST_MAX_AGENT_ID 128
#define INGEST_MAX_TENANT 64
#define INGEST_HELLO_MAX_BYTES (64u * 1024)
#define INGEST_PING_MAX_BYTES (64u * 1024)
#define INGEST_ACK_MAX_ERRORS 16
#define INGEST_OUTPUT_MAX_BYTES (8u * 1024 * 1024) /* unsent TLS bytes before we give up on a peer */
#define INGEST_TICK_MS 50
#define INGEST_CLOSE_GRACE_MS 2000

/* ---- agent registry (shared by all ingest threads, one mutex) ---- */

typedef struct agent_entry {
    struct agent_entry *next; /* hash chain */
    uint64_t tenant_hash;
    uint64_t agent_hash;
    char tenant[INGEST_MAX_TENANT + 1];
    char agent_id[INGEST_MAX_AGENT_ID + 1];
    uint64_t durable_seq;  /* everything <= is durable */
    uint64_t accepted_seq; /* everything <= was published (durable or about to be) */
    int64_t connected_since_us;
    int64_t last_seen_us;
    uint64_t events_received;
    uint64_t batches_received;
    char address[64];
    char version[65];
    bool owned;
    uint32_t owner_thread;
    uint32_t owner_slot;
    uint32_t owner_gen;
} agent_entry;

typedef struct registry {
    pthread_mutex_t lock;
    agent_entry **buckets;
    size_t bucket_count;
    size_t count;
} registry;

void registry_init(registry *r);
void registry_fini(registry *r);

/* ---- messages posted to an ingest thread from other threads ---- */

enum inbox_kind { INBOX_ACK = 1, INBOX_CLOSE, INBOX_COMMAND };

typedef struct inbox_msg {
    uint8_t kind;
    bool fetch;    /* INBOX_COMMAND: a fetch_file (chunks may follow) */
    uint32_t slot;
    uint32_t gen;
    uint64_t seq;  /* ACK: batch seq; COMMAND: command number */
    char *payload; /* INBOX_ACK: ACK JSON; INBOX_CLOSE: reason (static); INBOX_COMMAND: COMMAND JSON (owned) */
    uint32_t payload_len;
    int64_t latency_us;
    uint64_t max_bytes; /* INBOX_COMMAND fetch: the file limit */
    uint8_t action_id[16];
} inbox_msg;

static inline bool inbox_owns_payload(const inbox_msg *m) { return m->kind == INBOX_ACK || m->kind == INBOX_COMMAND; }

/* A command sent on a connection (its RESULTs are matched against these). */
#define INGEST_MAX_COMMANDS_PER_CONN 256u
typedef struct sent_command {
    uint64_t cmd_no;
    uint64_t max_bytes;
    uint8_t action_id[16];
    bool fetch;
    bool final; /* its final RESULT arrived */
} sent_command;

/* ---- connections ---- */

enum conn_state {
    CONN_FREE = 0,
    CONN_WAIT_BUDGET, /* accepted; handshake deferred by the handshake budget */
    CONN_HANDSHAKE,
    CONN_WAIT_HELLO,
    CONN_READY,
    CONN_CLOSING, /* flushing CLOSE / TLS alert, then shutdown(2) */
    CONN_DRAINING /* socket shut down; waiting for in-flight io_uring ops */
};

enum pause_reason {
    PAUSE_UNACKED = 1u << 0, /* too many unacknowledged batches */
    PAUSE_RATE = 1u << 1,    /* events/s or bytes/s over limit */
    PAUSE_BUS = 1u << 2,     /* bus refused a publish */
    PAUSE_NOBUF = 1u << 3,   /* no provided receive buffer left */
};

typedef struct conn {
    uint32_t gen;
    uint8_t state;
    uint8_t pause; /* enum pause_reason bits */
    bool recv_armed;
    bool send_armed;
    bool peer_closed;
    bool bios_renewed; /* handshake-sized BIO buffers replaced once idle */
    int fd;
    uint32_t ops_in_flight;
    SSL *ssl;
    BIO *rbio; /* network → TLS */
    BIO *wbio; /* TLS → network */
    buf in;    /* decrypted bytes not yet consumed as frames */
    size_t in_off;
    buf send; /* ciphertext being sent (immutable while a send is armed) */
    size_t send_off;
    /* identity */
    char tenant[INGEST_MAX_TENANT + 1];
    char agent_id[INGEST_MAX_AGENT_ID + 1];
    uint64_t tenant_hash;
    uint64_t agent_hash;
    agent_entry *agent;
    char peer[64];
    /* protocol */
    uint64_t frames_in;
    bool expect_first_batch; /* next EVENTS is the first after WELCOME (gap allowed) */
    bus_batch *pending;      /* built batch the bus refused; retried on wakeup */
    /* response (response.c) */
    uint32_t caps;            /* INGEST_CAP_* from HELLO */
    int8_t isolation;         /* last reported, INGEST_ISOLATION_UNKNOWN if never */
    bool online_told;         /* ONLINE was reported to the response service */
    char local[64];           /* the address the agent connected to */
    sent_command *cmds;       /* malloc'd, grows to at most INGEST_MAX_COMMANDS_PER_CONN */
    uint32_t cmd_count, cmd_cap;
    uint64_t xfer_cmd;        /* fetch_file transfer in progress (0: none) */
    bool xfer_done;           /* its last chunk arrived */
    buf xfer;
    void *xfer_sha;           /* EVP_MD_CTX */
    /* limits */
    double event_tokens;
    double byte_tokens;
    int64_t tokens_at_ms;
    int64_t accepted_ms;
    int64_t last_rx_ms;
    int64_t closing_since_ms;
} conn;

typedef struct ingest_counters {
    _Atomic uint64_t connections_accepted, connections_active, connections_refused_full, handshakes_failed,
        agents_connected, protocol_violations, superseded, batches_received, batches_acked, events_accepted,
        events_rejected, bytes_received, backpressure_pauses, seq_gaps, ack_latency_us_sum, ack_latency_count,
        events_rejected_invalid_json, events_rejected_invalid_event, commands_sent, results_received,
        results_unexpected, file_chunks, files_rejected;
    _Atomic uint64_t ack_latency_buckets[INGEST_ACK_BUCKETS];
} ingest_counters;

#define COUNT(t, field, n) atomic_fetch_add_explicit(&(t)->counters.field, (uint64_t)(n), memory_order_relaxed)

typedef struct ingest_thread {
    struct ingest *owner;
    uint32_t index;
    pthread_t thread;
    struct io_uring ring;
    int listen_fd;
    int event_fd;
    uint64_t event_fd_value;
    /* provided receive buffers */
    struct io_uring_buf_ring *buf_ring;
    char *buf_base;
    uint32_t buf_count;
    uint32_t buf_size;
    uint32_t bufs_to_return;
    /* connections */
    conn *conns;
    uint32_t conn_capacity;
    uint32_t *free_slots;
    uint32_t free_count;
    struct {
        uint32_t slot, gen;
    } *waiting;                          /* WAIT_BUDGET FIFO ring of conn_capacity entries */
    uint32_t waiting_head, waiting_count;
    uint32_t pending_conns;              /* connections holding a batch the bus refused */
    struct __kernel_timespec tick;    double handshake_tokens;
    int64_t handshake_tokens_at_ms;
    bool accept_armed;
    bool stopping;
    /* cross-thread inbox */
    pthread_mutex_t inbox_lock;
    inbox_msg *inbox;
    size_t inbox_len, inbox_cap;
    atomic_bool bus_wakeup;
    /* per-thread parsing state */
    json_parser *parser;
    normalizer *norm;
    ZSTD_DCtx *zstd;
    arena scratch; /* HELLO/PING parsing */
    buf ack_buf, err_buf; /* ACK payload assembly */
    ingest_counters counters;
    int64_t now_ms;
} ingest_thread;

struct ingest {
    const mamori_config *cfg;
    ingest_agent_event_fn on_agent_event;
    ingest_isolation_fn desired_isolation;
    void *response_ctx;
    bus *bus;
    ingest_durable_seq_fn durable_seq;
    void *durable_seq_ctx;
    SSL_CTX *ssl_ctx;
    uint16_t port;
    uint32_t thread_count;
    ingest_thread *threads;
    registry reg;
    atomic_bool stop;
};

/* tls.c */
int ingest_tls_create(const mamori_config *cfg, SSL_CTX **out, char *err, size_t err_len);
/* Extracts and validates CN (agent id) and O (tenant) of the verified peer certificate. */
int ingest_tls_identity(SSL *ssl, char *agent_id, size_t agent_cap, char *tenant, size_t tenant_cap);
bool ingest_identity_valid(const char *s, size_t len, size_t max, bool allow_agent_chars);

/* loop.c: io_uring plumbing used by conn.c */
void loop_arm_recv(ingest_thread *t, conn *c);
void loop_flush(ingest_thread *t, conn *c);
void loop_post(ingest *in, uint32_t thread, const inbox_msg *msg);
void loop_begin_close(ingest_thread *t, conn *c);

/* conn.c: protocol state machine */
void conn_on_accept(ingest_thread *t, conn *c);
void conn_on_data(ingest_thread *t, conn *c, const char *data, size_t len);
void conn_pump(ingest_thread *t, conn *c);
void conn_close(ingest_thread *t, conn *c, const char *reason);
void conn_send_frame(ingest_thread *t, conn *c, uint8_t type, uint8_t flags, uint64_t seq, const void *payload,
                     size_t len);
void conn_on_inbox(ingest_thread *t, const inbox_msg *m);
void conn_retry_pending(ingest_thread *t, conn *c);
void conn_tick(ingest_thread *t, conn *c);
void conn_release(ingest_thread *t, conn *c);

/* batch.c: an EVENTS frame → a bus batch, or a violation reason */
int batch_build(ingest_thread *t, conn *c, const frame_header *h, const uint8_t *payload, bus_batch **out,
                char *reason, size_t reason_len);

/* response.c: HELLO capabilities, heartbeats, COMMAND delivery, RESULT and file chunks */
void conn_resp_hello(ingest_thread *t, conn *c, const json_value *hello, const char *raw, size_t raw_len);
void conn_resp_ping(ingest_thread *t, conn *c, const uint8_t *payload, uint32_t len);
void conn_resp_result(ingest_thread *t, conn *c, const frame_header *h, const uint8_t *payload);
void conn_resp_command(ingest_thread *t, conn *c, const inbox_msg *m);
/* The connection ends (conn_close) / its slot is freed (conn_release). */
void conn_resp_close(ingest_thread *t, conn *c);
void conn_resp_release(conn *c);
/* Whether the violation helper should be used (response.c reports violations through it). */
void conn_violation(ingest_thread *t, conn *c, const char *reason);
int conn_resp_desired_isolation(ingest *in, const conn *c);

/* registry.c */
/* Claims the agent for this connection. Returns the entry, the resume point and acked
 * point for WELCOME, and the previous owner (if another connection held it). */
int registry_claim(ingest *in, conn *c, uint32_t thread, uint32_t slot, const char *version, size_t version_len,
                   uint64_t *resume_seq, uint64_t *acked_seq, bool *had_owner, uint32_t *prev_thread,
                   uint32_t *prev_slot, uint32_t *prev_gen);
/* Records that the agent was heard from (heartbeats). */
void registry_seen(ingest *in, conn *c);
/* Checks ownership and sequence, then publishes under the registry lock so the resume
 * point can never run ahead of what was published. Returns 0, -EAGAIN (bus full),
 * -ESTALE (superseded: drop quietly), or -EPROTO with reason. */
int registry_publish(ingest *in, conn *c, uint32_t thread, uint32_t slot, bus_batch *b, bool first_after_welcome,
                     bool *gap, char *reason, size_t reason_len);
void registry_release(ingest *in, conn *c, uint32_t thread, uint32_t slot);
/* Unacked batches of the agent (accepted - durable). */
uint64_t registry_unacked(ingest *in, const conn *c);
/* The bus durable callback. */
void registry_on_durable(bus_batch *b, int status, void *ctx);

#endif
