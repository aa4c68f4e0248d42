/* server/internal.h — pieces of mamorid: the store worker (bus consumer → group commit),
 * development mode, and process-wide state. */
#ifndef MAMORI_SERVER_INTERNAL_H
#define MAMORI_SERVER_INTERNAL_H

#include <pthread.h>
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
