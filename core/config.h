/* core/config.h — the one YAML configuration file (docs/configuration.md, and the
 * commented example deploy/mamorid.yaml). Every key has a default and a range; unknown
 * keys, wrong types and out-of-range values are errors naming the key and line.
 * The loaded config is immutable after start-up and shared read-only. */
#ifndef MAMORI_CORE_CONFIG_H
#define MAMORI_CORE_CONFIG_H

#include "base.h"

#include <stdio.h>

#define CONFIG_MAX_TENANT_OVERRIDES 256

typedef struct config_tenant {
    char *name;
    uint32_t retention_days; /* 0: inherit store.retention_days */
} config_tenant;

/* A list of strings (a YAML sequence of scalars), e.g. detect.rules. Items are heap copies
 * owned by the config. */
typedef struct config_list {
    char **items;
    uint32_t count;
} config_list;

/* The roles one mamorid process runs (config key node.roles, --roles). */
enum {
    CONFIG_ROLE_INGEST = 1u << 0,
    CONFIG_ROLE_DETECT = 1u << 1,
    CONFIG_ROLE_STORE = 1u << 2,
    CONFIG_ROLE_API = 1u << 3,
    CONFIG_ROLE_RULESYNC = 1u << 4,
    CONFIG_ROLE_COUNT = 5,
};

/* response.tenants.<name>: per-tenant response policy (0 / has_* false: inherit). */
typedef struct config_response_tenant {
    char *name;
    uint64_t max_file_bytes;
    bool has_auto_allowed;
    config_list auto_allowed;
    bool has_auto_max_per_minute;
    uint32_t auto_max_per_minute;
} config_response_tenant;

typedef struct mamori_config {
    struct {
        char *level; /* debug | info | warn | error */
    } log;
    struct {
        char *roles; /* comma-separated role names; config_roles parses them */
    } node;
    struct {
        char *listen;      /* "ADDR:PORT" */
        uint32_t threads;  /* io_uring threads, each with its own ring */
        char *tls_cert;    /* server certificate (PEM) */
        char *tls_key;     /* its private key */
        char *tls_ca;      /* CA that signs agent certificates */
        uint32_t max_connections; /* across all threads */
        uint32_t max_frame_bytes;
        uint32_t max_batch_bytes;  /* decompressed EVENTS payload */
        uint32_t max_batch_events;
        uint32_t max_unacked_batches; /* per connection */
        uint32_t max_events_per_second; /* per connection */
        uint64_t max_bytes_per_second;  /* per connection, wire bytes */
        uint32_t handshake_timeout_ms;
        uint32_t heartbeat_interval_ms;
        uint32_t max_handshakes_per_second; /* per ingest thread */
        uint32_t max_event_age_days;   /* older event times are not trusted for ordering */
        uint32_t max_clock_skew_s;     /* event times further in the future neither */
        uint32_t recv_buffer_bytes;    /* size of each provided receive buffer */
        uint32_t recv_buffers;         /* provided receive buffers per thread */
    } ingest;
    struct {
        char *type; /* embedded | kafka */
        uint32_t queue_batches;     /* per consumer partition */
        uint64_t max_inflight_bytes; /* memory of batches published but not yet released */
        struct {                     /* bus.type kafka (docs/kafka.md) */
            char *bootstrap;         /* "host:port[,host:port]" */
            char *topic;
            char *group_prefix;      /* consumer groups <prefix>store, <prefix>detect */
            uint32_t partitions;     /* when mamorid creates the topic */
            uint32_t replication_factor; /* when mamorid creates the topic; 0: broker default */
            char *compression;
            uint32_t linger_ms;
            uint32_t drain_timeout_ms; /* shutdown: flush to the broker, consumers catch up */
            char *instance_id;       /* static group membership when set ("" : dynamic) */
            char *alerts_topic;      /* alerts of detect workers without the store role */
            uint32_t store_shards;   /* > 0: store shards own partitions p % store_shards == store_shard */
            uint32_t store_shard;
            char *matches_topic;     /* re-keyed correlation matches ("": none) */
            uint32_t correlate_shards; /* > 0: detect processes own partitions p % shards == shard of it */
            uint32_t correlate_shard;
        } kafka;
    } bus;
    struct {
        char *path;
        bool sync;
        uint32_t retention_days;
        uint32_t retention_check_interval_s;
        uint64_t block_cache_bytes;
        uint64_t write_buffer_bytes;
        uint32_t zstd_level;
        uint32_t zstd_dict_bytes;
        uint32_t index_slice_ms;
        uint64_t index_slice_max_bytes;
        uint32_t group_commit_max_batches;
        uint64_t group_commit_max_bytes;
        config_tenant tenants[CONFIG_MAX_TENANT_OVERRIDES];
        uint32_t tenant_count;
    } store;
    struct {
        bool enabled;
        char *listen;   /* "ADDR:PORT" */
        uint32_t threads;
        char *tls_cert; /* "" = ingest.tls_cert */
        char *tls_key;  /* "" = ingest.tls_key */
        uint32_t max_body_bytes;
        uint32_t max_header_bytes;
        uint32_t max_concurrent_requests; /* searches, trees and listings running at once */
        uint32_t rate_limit_per_key;      /* requests/s per API key (token bucket), 0 = off */
        uint32_t rate_limit_burst;
        uint32_t query_deadline_ms;
        uint32_t max_result_rows;
        uint32_t max_groups;
        uint32_t max_sequence_keys;
        uint32_t max_candidates;
        uint32_t idle_timeout_s;
        uint32_t default_range_hours;
        config_list shards;      /* store shards' API URLs: fan-out (api/fanout.c); empty: the local store */
        char *shards_ca;         /* "" = ingest.tls_ca */
        config_list ingest_nodes; /* ingest processes' API URLs: remote response routed there (api/fanout_response.c) */
        uint32_t shard_timeout_ms;
    } api;
    struct {
        config_list rules;        /* rule files or directories (YAML files found recursively) */
        config_list placeholders; /* "NAME=VALUE" for the `expand` modifier, one value each */
        uint32_t threads;         /* detect consumers: one bus partition and worker each */
        uint32_t compile_threads; /* Hyperscan compile threads (0: online CPUs, max 16) */
        bool include_deprecated;
        bool include_unsupported;
        uint32_t max_rules;
        uint32_t max_alerts_per_batch;
        uint32_t checkpoint_interval_ms; /* detected-up-to watermark write interval when no alert */
        uint32_t recovery_lookback_s;    /* start-up re-detection window before the watermark */
        /* Sigma correlation rules (docs/detection.md §11.6) */
        uint32_t correlation_max_keys;          /* group-by keys per (tenant, correlation) */
        uint32_t correlation_max_events_per_key; /* matches kept per key */
        uint32_t correlation_lateness_s;        /* event-time lateness allowance */
        uint32_t correlation_checkpoint_interval_ms; /* correlation state checkpoint interval */
    } detect;
    struct { /* remote response (docs/response.md) */
        uint32_t max_pending_per_agent; /* actions queued or in flight per agent */
        uint64_t max_file_bytes;        /* largest fetched file (and max_bytes of fetch_file) */
        uint32_t max_output_bytes;      /* largest RESULT output (decompressed JSON) */
        uint32_t default_expires_s;     /* expires_in when a request names none */
        uint32_t drift_grace_s;         /* desired != reported this long while online: alert */
        config_list isolation_allow;    /* endpoints an isolated agent keeps, besides the ingest address it uses */
        config_list auto_allowed;       /* actions rules may request automatically */
        uint32_t auto_max_per_minute;   /* automatic actions per tenant per minute */
        config_response_tenant tenants[CONFIG_MAX_TENANT_OVERRIDES];
        uint32_t tenant_count;
    } response;
} mamori_config;

/* Fills every key with its default. Strings are heap copies owned by the config. */
void config_defaults(mamori_config *cfg);
/* Loads a YAML file over the defaults. On error returns -EINVAL (or -errno for I/O) and
 * writes a message naming the file, line and key to err. */
int config_load_file(mamori_config *cfg, const char *path, char *err, size_t err_len) MAMORI_WUR;
/* Same, from a string (tests); `name` is used in messages. */
int config_load_string(mamori_config *cfg, const char *yaml, size_t len, const char *name, char *err,
                       size_t err_len) MAMORI_WUR;
/* Cross-key checks (e.g. max_batch_bytes >= max_frame_bytes). */
int config_validate(const mamori_config *cfg, char *err, size_t err_len) MAMORI_WUR;
/* The roles of cfg->roles as CONFIG_ROLE_* bits; -EINVAL with err naming an unknown role. */
int config_roles(const mamori_config *cfg, uint32_t *roles, char *err, size_t err_len) MAMORI_WUR;
/* Sets one key from a dotted name and text ("ingest.threads", "4"); for command-line
 * overrides. Same checks as the file. */
int config_set(mamori_config *cfg, const char *key, const char *value, char *err, size_t err_len) MAMORI_WUR;
void config_free(mamori_config *cfg);
/* List keys (detect.rules…): append a copy of item[0..len), or empty the list. */
void config_list_append(config_list *l, const char *item, size_t len);
void config_list_clear(config_list *l);
/* The response policy of a tenant: its override under response.tenants, else the global value. */
uint64_t config_response_max_file_bytes(const mamori_config *cfg, const char *tenant);
const config_list *config_response_auto_allowed(const mamori_config *cfg, const char *tenant);
uint32_t config_response_auto_max_per_minute(const mamori_config *cfg, const char *tenant);

/* Writes the effective configuration as YAML (every key, with its range as a comment). */
void config_dump(const mamori_config *cfg, FILE *out);

#endif
