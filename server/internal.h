/* server/internal.h — pieces of mamorid: the store worker (bus consumer → group commit),
 * development mode, and process-wide state. */
#ifndef MAMORI_SERVER_INTERNAL_H
#define MAMORI_SERVER_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "bus/bus.h"
#include "core/config.h"
#include "ingest/ingest.h"
#include "store/store.h"

typedef struct store_worker {
    store *db;
    bus_consumer *consumer;
    const mamori_config *cfg;
    pthread_t thread;
    atomic_bool stop;
    /* counters (read by the stats logger) */
    _Atomic uint64_t groups, batches, events, write_errors, commit_us_sum;
} store_worker;

int store_worker_start(store_worker *w, store *db, bus *b, const mamori_config *cfg) MAMORI_WUR;
/* Returns after the bus is shut down and every queued batch was written. */
void store_worker_join(store_worker *w);

/* ---- the bus (server/bus_setup.c): embedded or Kafka, by bus.type ---- */
bool server_bus_is_kafka(const mamori_config *cfg);
/* Creates the bus with the groups "store" (1 consumer) and "detect" (detect.threads). */
int server_bus_create(const mamori_config *cfg, bus **out) MAMORI_WUR;
/* Kafka only (0 at once otherwise): waits until the store group has done everything in the
 * topic, so the durable seqs ingest hands out in WELCOME cover every batch Kafka has. Returns
 * -EINTR when SIGINT/SIGTERM (blocked, in stop_signals) arrived meanwhile. */
int server_bus_catch_up(bus *b, const mamori_config *cfg, const sigset_t *stop_signals) MAMORI_WUR;
/* Ingest without the store role (Kafka): wraps the bus so that every batch the broker
 * acknowledged is recorded in db (agent durable seqs, no events) before ingest hears it is
 * durable; db then gives the resume points. Takes inner (destroyed with the wrapper). */
int server_ingest_ledger_wrap(bus *inner, store *db, bus **out) MAMORI_WUR;
/* Store role on Kafka (server/alert_transport.c): a thread that writes the alerts detect
 * workers of other processes send on the alerts topic, for the partitions this store shard
 * owns. */
typedef struct alert_intake alert_intake;
int alert_intake_start(bus *b, store *db, const mamori_config *cfg, alert_intake **out) MAMORI_WUR;
void alert_intake_stop(alert_intake *in); /* NULL: nothing */
/* The API's metrics_extra hook: detect's metrics, then the bus's. */
void server_metrics_extra(bus *b, void (*detect_fn)(void *ctx, buf *out), void *detect_ctx,
                          void (**fn)(void *ctx, buf *out), void **ctx);

/* ---- live detection (server/detect_*.c, alert_record.c; docs/detection.md "Live detection") ----
 *
 * A detect runtime owns the current rule set (a detect_slot), a loader thread that builds
 * rule sets off the hot path (start-up, SIGHUP, rulesync later), and `detect.threads`
 * consumer threads of the bus group "detect" (one partition each). A thread evaluates each
 * batch with the rule set current when it takes the batch — the batch is the swap point —
 * and writes the batch's alerts and its "detected up to" watermark once the batch itself is
 * durable in the store, so an alert never points at an event the store might lose. */
typedef struct detect_rt detect_rt;

/* Builds nothing yet: checks that every configured rule path exists (err names it). */
int detect_rt_create(const mamori_config *cfg, store *db, bus *b, detect_rt **out, char *err,
                     size_t err_len) MAMORI_WUR;
/* Starts the loader (initial rule set, then re-detection of what a crash left undetected)
 * and the detection threads (which wait for both). */
int detect_rt_start(detect_rt *rt) MAMORI_WUR;
/* Asks the loader thread to rebuild the rule set from the configured paths (SIGHUP);
 * returns at once. */
void detect_rt_request_reload(detect_rt *rt);
/* Builds a rule set from the configured paths on the calling thread and swaps it in; on any
 * failure the running set stays, err says why and a negative errno is returned. Serialized
 * with other reloads. What rulesync calls. */
int detect_rt_reload(detect_rt *rt, char *err, size_t err_len) MAMORI_WUR;
/* After bus_shutdown and the store writer's join: drains the detect queues, writes the last
 * alerts and watermarks, joins every thread. */
void detect_rt_join(detect_rt *rt);
void detect_rt_destroy(detect_rt *rt);
/* Appends the detect metrics (Prometheus text) to out; ctx is the detect_rt. */
void detect_rt_write_metrics(void *ctx, buf *out);
/* For the stats line. */
typedef struct detect_rt_summary {
    uint64_t generation, rules;
    uint64_t events, alerts, pending_batches;
} detect_rt_summary;
void detect_rt_get_summary(detect_rt *rt, detect_rt_summary *out);
/* Where new alerts of rules with x-mamori: {response: [...]} ask for actions (NULL: nowhere). */
struct response_svc;
void detect_rt_set_response(detect_rt *rt, struct response_svc *resp);

/* Development mode (DESIGN §13): prepares DIR (PKI, admin key, data dir) and the config. */
typedef struct dev_setup {
    char dir[1024];
    char admin_key_path[1100];
    char dev_json_path[1100];
    uint16_t ingest_port;
    uint16_t api_port;
} dev_setup;
int dev_prepare(dev_setup *dev, mamori_config *cfg, char *err, size_t err_len) MAMORI_WUR;
/* After the store is open: creates the admin API key for tenant "default" once. */
int dev_ensure_admin_key(dev_setup *dev, store *db, char *err, size_t err_len) MAMORI_WUR;
/* Writes DIR/dev.json with the real ports. */
int dev_write_json(dev_setup *dev, uint16_t ingest_port, char *err, size_t err_len) MAMORI_WUR;

#endif
