/* bench/sim/sim.h — private to mamori-agent-sim: the run's options, the simulated agent
 * (connection, protocol state, spool), the per-thread worker that drives agents with
 * epoll, and the counters behind the summary line. docs/simulator.md is the user's view;
 * docs/protocol.md the contract every agent here follows. */
#ifndef MAMORI_BENCH_SIM_H
#define MAMORI_BENCH_SIM_H

#include "core/arena.h"
#include "core/base.h"
#include "core/buf.h"
#include "core/json.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <zstd.h>

#define SIM_VERSION "0.1.0"
#define SIM_AGENT_ID_MAX 128
#define SIM_TENANT_MAX 64
#define SIM_EVENT_BYTES_MAX (64u * 1024)  /* longer replay lines are skipped at load */
#define SIM_FRAME_BYTES_MIN (256u * 1024) /* smallest WELCOME max_frame_bytes we can honour */
#define SIM_TICK_MS 10                   /* timer resolution: rate, flush, heartbeat, backoff */
#define SIM_HANDSHAKE_TIMEOUT_MS 15000   /* TCP connect + TLS + HELLO→WELCOME */
#define SIM_BACKOFF_MIN_MS 100
#define SIM_BACKOFF_MAX_MS 5000
#define SIM_DEFAULT_HEARTBEAT_MS 30000   /* until WELCOME says otherwise */
#define SIM_DEFAULT_WINDOW 16            /* max_unacked_batches until WELCOME says otherwise */
#define SIM_PENDING_MAX 10000000u        /* rate mode: events "happening" while disconnected */
#define SIM_CLOSE_GRACE_MS 2000          /* at the end: time to flush CLOSE frames */

enum sim_format { SIM_FORMAT_ECS = 0, SIM_FORMAT_WINLOG = 1, SIM_FORMAT_AUTO = 2 };

/* ---- options (main.c) ---- */

typedef struct sim_options {
    const char *dev_dir;
    const char *server;      /* HOST:PORT */
    const char *ca_file;
    const char *cert_dir;
    const char *server_name; /* name checked against the server certificate; default: host */
    uint32_t agents;
    uint32_t first_agent;
    const char *agent_prefix;
    const char *tenant;      /* NULL: from dev.json, else "default" */
    bool allow_shared_certs;
    uint64_t events_per_agent; /* 0: not in that mode */
    double duration_s;         /* 0: not in that mode */
    double rate_eps;           /* total across agents; 0 = as fast as possible */
    const char **replay_files;
    size_t replay_count;
    enum sim_format format;
    bool format_given;
    bool no_rebase;
    uint32_t threads;
    uint32_t batch_events;
    uint32_t flush_ms;
    bool no_compress;
    int zstd_level;
    uint64_t inject_malformed; /* every K-th event is invalid JSON; 0 = never */
    bool idle;
    double timeout_s;
    uint32_t max_handshakes;   /* concurrent connects+handshakes, all threads */
    uint32_t max_inflight;     /* 0: WELCOME's max_unacked_batches */
    uint64_t seed;
    uint32_t progress_ms;      /* 0: no progress lines */
    const char *sandbox_dir;   /* response actions: the permitted root; NULL = none */
    uint32_t sandbox_procs;    /* long-running children started for list/kill_process */
    bool isolation_nft;        /* isolate/release install/delete nftables rules for real */
    bool dump;                 /* write the synthetic events to stdout instead of sending them */
} sim_options;

/* ---- identities (identity.c) ---- */

typedef struct sim_identity {
    char agent_id[SIM_AGENT_ID_MAX + 1];
    char tenant[SIM_TENANT_MAX + 1];
    uint8_t *cert_der; /* owned */
    uint32_t cert_der_len;
    EVP_PKEY *key;     /* one reference held; shared between agents in --dev mode */
} sim_identity;

/* The target and the credentials of every agent, set up before any thread starts. */
typedef struct sim_target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[256];        /* for messages */
    char verify_name[256]; /* host name or IP literal the server certificate must match */
    bool verify_is_ip;
    SSL_CTX *ssl_ctx;
    sim_identity *identities; /* one per agent (shared certificates: repeated pointers) */
    uint32_t identity_count;
} sim_target;

int sim_target_setup(const sim_options *opt, sim_target *t) MAMORI_WUR;
void sim_target_fini(sim_target *t);

/* ---- spool (spool.c): unacknowledged batches of one agent, oldest first ---- */

typedef struct sim_batch {
    uint64_t seq;
    uint32_t events;
    uint32_t malformed;  /* injected invalid lines: the rejections to expect */
    int64_t sent_us;     /* write completed on the current connection; 0 = not (yet) */
    buf frame;           /* 16-byte header + payload, ready to write; reused across seqs */
} sim_batch;

typedef struct sim_spool {
    sim_batch *slots;
    uint32_t cap; /* power of two */
    uint32_t head;
    uint32_t count;
} sim_spool;

void spool_init(sim_spool *s);
void spool_fini(sim_spool *s);
/* Appends a slot for `seq` (must be the back's seq + 1 when not empty); its frame buffer
 * is a reused one, cleared. Borrowed until popped. */
sim_batch *spool_push(sim_spool *s, uint64_t seq);
static inline sim_batch *spool_at(sim_spool *s, uint32_t i) { return &s->slots[(s->head + i) & (s->cap - 1)]; }
static inline sim_batch *spool_front(sim_spool *s) { return s->count ? spool_at(s, 0) : NULL; }
static inline sim_batch *spool_back(sim_spool *s) { return s->count ? spool_at(s, s->count - 1) : NULL; }
void spool_pop_front(sim_spool *s);
/* The batch numbered seq, or NULL. */
sim_batch *spool_find(sim_spool *s, uint64_t seq);
/* Frees frame buffers of unused slots (an agent that finished keeps little memory). */
void spool_trim(sim_spool *s);

/* ---- event sources (model.c, render_*.c, replay.c) ---- */

typedef struct sim_host {
    const char *name; /* = agent id; host.name, Hostname */
    char id[40];      /* host.id */
    char ip[16];
    char mac[18];
    bool windows;
    uint32_t index;
} sim_host;

void sim_host_init(sim_host *h, const char *agent_id, uint32_t index, bool windows);
/* Whether synthetic agent number `number` runs Windows: one host in five runs Linux in
 * synthetic ECS; winlog and replays are Windows. */
static inline bool sim_host_windows(enum sim_format format, bool replay, uint32_t number)
{
    return format != SIM_FORMAT_ECS || replay || number % 5 != 4;
}

typedef struct sim_model sim_model; /* synthetic host activity: process tree and friends */
sim_model *model_create(const sim_host *host, uint64_t seed);
/* The model seed of host under the run's --seed: each host its own stream. */
static inline uint64_t sim_model_seed(uint64_t seed, const sim_host *host)
{
    return seed ^ ((uint64_t)host->index * 0x9E3779B97F4A7C15ULL);
}
void model_destroy(sim_model *m);
/* Appends one event (no newline) in `format` (ecs or winlog) happening at now_us. */
void model_render(sim_model *m, enum sim_format format, int64_t now_us, buf *out);

typedef struct replay_corpus replay_corpus;
/* Loads OTRF zips (NXLog JSON lines inside) and plain .json/.ndjson files. Logs what it
 * skipped; -EINVAL if nothing usable was found. */
int replay_load(const char *const *files, size_t count, replay_corpus **out) MAMORI_WUR;
void replay_destroy(replay_corpus *c);
uint64_t replay_line_count(const replay_corpus *c);

typedef struct replay_cursor {
    uint64_t line;
    uint32_t file;
    bool started;
    int64_t shift_us;   /* added to every time of the current file segment */
    int64_t last_us;    /* latest rebased time sent: segments never go back in time */
} replay_cursor;

void replay_cursor_init(replay_cursor *cur, const replay_corpus *c, uint64_t start_line);
/* Appends the next line (no newline), its times rebased to now (unless !rebase), and
 * advances, wrapping at the end of the corpus. */
void replay_render(const replay_corpus *c, replay_cursor *cur, bool rebase, int64_t now_us, buf *out);

/* ---- statistics (stats.c) ---- */

#define SIM_HIST_BUCKETS (64 * 16)

typedef struct sim_histogram {
    uint64_t counts[SIM_HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
} sim_histogram;

void histogram_record(sim_histogram *h, uint64_t value);
void histogram_merge(sim_histogram *into, const sim_histogram *from);
uint64_t histogram_percentile(const sim_histogram *h, double p);

/* Written by one worker, read by the main thread for progress and the summary. */
typedef struct sim_counters {
    _Atomic uint64_t sent;           /* distinct events put into batches */
    _Atomic uint64_t acked;          /* events of acknowledged batches */
    _Atomic uint64_t rejected;
    _Atomic uint64_t malformed;      /* injected invalid events */
    _Atomic uint64_t batches;
    _Atomic uint64_t batches_acked;
    _Atomic uint64_t acked_without_report; /* batches acked by WELCOME or a later ACK */
    _Atomic uint64_t ack_mismatches; /* accepted + rejected != events of the batch */
    _Atomic uint64_t duplicates;     /* ACK duplicate:true */
    _Atomic uint64_t resent_batches;
    _Atomic uint64_t bytes_raw;      /* NDJSON bytes of new batches */
    _Atomic uint64_t bytes_frames;   /* frame bytes written, resends included */
    _Atomic uint64_t connects;       /* WELCOMEs received */
    _Atomic uint64_t reconnects;     /* WELCOMEs after an agent's first */
    _Atomic uint64_t connect_failures;
    _Atomic uint64_t server_closes;
    _Atomic uint64_t protocol_errors; /* CLOSEs naming a violation of ours, or the server's */
    _Atomic uint64_t commands;       /* COMMAND frames received */
    _Atomic uint64_t commands_repeated; /* ids already finished: answered, not executed again */
    _Atomic uint64_t results_succeeded; /* final RESULTs sent */
    _Atomic uint64_t results_failed;
    _Atomic uint64_t file_bytes_sent; /* fetch_file chunks */
    _Atomic uint64_t isolation_changes;
    _Atomic uint64_t isolated;       /* agents enforcing isolation right now */
    _Atomic uint64_t connected;      /* agents with a WELCOME right now */
    _Atomic uint64_t finished;       /* agents with nothing more to do */
    _Atomic uint64_t failed;         /* agents stopped for good (permanent CLOSE) */
    _Atomic uint64_t seq_regressions; /* WELCOME acked_seq below what was already acked */
} sim_counters;

#define STAT_ADD(c, field, n) atomic_fetch_add_explicit(&(c)->field, (uint64_t)(n), memory_order_relaxed)
#define STAT_SUB(c, field, n) atomic_fetch_sub_explicit(&(c)->field, (uint64_t)(n), memory_order_relaxed)
#define STAT_GET(c, field) atomic_load_explicit(&(c)->field, memory_order_relaxed)

/* ---- agents and workers (agent.c, conn.c, worker.c) ---- */

enum agent_state {
    AGENT_WAITING = 0, /* disconnected; next attempt at next_attempt_ms */
    AGENT_CONNECTING,  /* TCP connect in progress */
    AGENT_HANDSHAKE,   /* TLS handshake */
    AGENT_HELLO,       /* HELLO sent, waiting for WELCOME */
    AGENT_READY,
    AGENT_CLOSING,     /* our CLOSE queued; the connection ends when it is written */
    AGENT_STOPPED,     /* for good */
};

enum write_unit { WRITE_NONE = 0, WRITE_CONTROL, WRITE_BATCH };

typedef struct sim_agent {
    uint32_t index;       /* global */
    uint32_t local;       /* in its worker */
    enum agent_state state;
    const sim_identity *identity;
    sim_host host;

    /* connection */
    int fd;
    SSL *ssl;
    uint32_t generation;  /* bumped per connection: stale epoll events are ignored */
    int64_t next_attempt_ms;
    int64_t attempt_started_ms;
    uint32_t backoff_attempt;
    bool close_reconnect; /* AGENT_CLOSING: reconnect once our CLOSE is out */
    bool ever_connected;
    bool counted_connected;
    uint64_t frames_in;   /* frames received on this connection, for messages */
    buf rx;               /* a partial frame carried between reads */
    buf control;          /* queued control frames (HELLO, PING, PONG, RESULT, CLOSE) */
    enum write_unit unit;
    size_t unit_off;
    size_t unit_len;
    int64_t last_tx_ms;
    uint64_t ping_nonce;

    /* protocol (docs/protocol.md §4.2-4.4) */
    uint64_t next_seq;    /* number of the next new batch */
    uint64_t acked_seq;   /* highest durable seq known */
    uint64_t tx_seq;      /* next spooled seq to write on this connection */
    sim_spool spool;
    uint32_t window;      /* batches in flight allowed */
    uint32_t batch_events;
    uint32_t heartbeat_ms;
    uint32_t max_frame_bytes;
    size_t batch_bytes_soft;

    /* production */
    uint64_t produced;    /* events put into batches (toward --events-per-agent) */
    uint64_t quota;       /* events this agent must produce; UINT64_MAX = until time is up */
    uint64_t pending;     /* rate mode: events that happened and wait for a batch */
    double credit;        /* rate mode: fractional events owed */
    int64_t pending_since_ms;
    bool finished;
    sim_model *model;     /* synthetic events; created on first use */
    replay_cursor replay;

    /* response actions (response.c, docs/response.md) */
    bool isolated;         /* the state enforced and reported */
    bool report_isolation; /* changed: report it in a heartbeat now */
    struct sim_response *response; /* commands, transfer, finished ids; created on first use */
} sim_agent;

typedef struct sim_run sim_run;

typedef struct sim_worker {
    uint32_t id;
    sim_run *run;
    pthread_t thread;
    int epfd;
    sim_agent *agents;
    uint32_t agent_count;
    uint32_t handshakes;     /* agents between connect() and WELCOME */
    uint32_t handshake_cap;
    uint32_t connect_cursor; /* round-robin start for (re)connects */
    double rate_per_agent;   /* events/s; 0 = unlimited */
    int64_t last_tick_ms;
    uint64_t rng;
    ZSTD_CCtx *cctx;
    buf render;              /* NDJSON of the batch being built */
    json_parser *json;
    arena json_arena;
    uint8_t *read_buf;
    size_t read_buf_bytes;
    sim_counters counters;
    sim_histogram ack_latency_us;
} sim_worker;

struct sim_sandbox;

struct sim_run {
    sim_options opt;
    sim_target target;
    struct sim_sandbox *sandbox; /* always set; without --sandbox it permits no path */
    bool isolated_at_start;      /* --isolation nft: the table was there (a restart while isolated) */
    replay_corpus *corpus;
    enum sim_format format;
    sim_worker *workers;
    int64_t start_ms;
    int64_t production_end_ms; /* --duration: no new events after this; INT64_MAX otherwise */
    atomic_bool stop;
};

int worker_init(sim_worker *w, sim_run *run, uint32_t id, uint32_t first_agent, uint32_t agent_count) MAMORI_WUR;
void worker_fini(sim_worker *w);
void *worker_main(void *arg);

/* agent.c: the protocol side of one agent */
void agent_init(sim_worker *w, sim_agent *a, uint32_t index, uint32_t local);
void agent_fini(sim_agent *a);
/* Frames from the server, in order. Returns 0, or -1 when the connection was ended. */
int agent_on_frame(sim_worker *w, sim_agent *a, uint8_t type, uint8_t flags, uint64_t seq, const uint8_t *payload,
                   uint32_t len);
/* Builds new batches while the window and the event budget allow. */
void agent_produce(sim_worker *w, sim_agent *a, int64_t now_ms);
/* Timers: rate credit, heartbeats, end of production. */
void agent_tick(sim_worker *w, sim_agent *a, int64_t now_ms, double dt_s);
void agent_queue_hello(sim_worker *w, sim_agent *a);
void agent_check_finished(sim_worker *w, sim_agent *a, int64_t now_ms);

/* conn.c: sockets and TLS */
void conn_start(sim_worker *w, sim_agent *a, int64_t now_ms);
void conn_on_event(sim_worker *w, sim_agent *a, uint32_t events, int64_t now_ms);
/* Writes what is queued until the socket would block. Returns 0, or -1 if the connection ended. */
int conn_flush(sim_worker *w, sim_agent *a);
/* Ends the connection; reconnects after a backoff unless `permanent`. */
void conn_drop(sim_worker *w, sim_agent *a, bool permanent);
/* Queues a frame on the control queue. */
void conn_queue_frame(sim_agent *a, uint8_t type, uint64_t seq, const void *payload, size_t len);
void conn_queue_frame_flags(sim_agent *a, uint8_t type, uint8_t flags, uint64_t seq, const void *payload, size_t len);
/* Sends CLOSE with reason (our violation detector, or the end of the run). */
void conn_close_with(sim_worker *w, sim_agent *a, const char *reason, bool reconnect);

/* response.c: COMMAND → RESULT (docs/response.md §2) */
typedef struct sim_response sim_response;
void response_on_command(sim_worker *w, sim_agent *a, uint64_t seq, const uint8_t *payload, uint32_t len);
/* Sends what a transfer has ready and runs waiting commands; on every tick and write. */
void response_pump(sim_worker *w, sim_agent *a);
/* The connection ended: a transfer in progress and waiting commands are dropped (the
 * server delivers what is not final again). */
void response_on_disconnect(sim_agent *a);
void response_free(sim_agent *a);
/* WELCOME.isolation: converge on the desired state. */
void response_apply_desired(sim_worker *w, sim_agent *a, bool isolated);
const char *agent_isolation_name(const sim_agent *a);

/* isolation.c: --isolation nft */
int isolation_nft_probe(bool *isolated, char *err, size_t err_len) MAMORI_WUR;
int isolation_nft_apply(const struct sockaddr_storage *allow, size_t count, char *err, size_t err_len) MAMORI_WUR;
int isolation_nft_remove(char *err, size_t err_len) MAMORI_WUR;

static inline uint64_t sim_rng_next(uint64_t *s)
{
    /* xorshift64*: plenty for picking simulated activity. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static inline uint32_t sim_rng_below(uint64_t *s, uint32_t n) { return (uint32_t)((sim_rng_next(s) >> 32) * n >> 32); }

#endif
