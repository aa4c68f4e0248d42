/* server/store_worker.c — the durable consumer: pulls batches from the bus and writes them
 * in group commits (one RocksDB write, one WAL append per group). While a group is being
 * written, new batches queue up and form the next group, so the commit rate adapts to the
 * disk. A failed write is retried with backoff, never dropped: ingest stops reading from
 * agents meanwhile (the bus fills up) and agents keep their spools. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "store"
#define MAX_GROUP 4096

static void *worker_main(void *arg)
{
    store_worker *w = arg;
    pthread_setname_np(pthread_self(), "store-writer");
    uint32_t max_batches = w->cfg->store.group_commit_max_batches;
    if (max_batches > MAX_GROUP) max_batches = MAX_GROUP;
    bus_batch **batches = mamori_xcalloc(max_batches, sizeof *batches);
    store_batch *group = mamori_xcalloc(max_batches, sizeof *group);
    int64_t next_retention_ms = clock_mono_ms() + 10000;
    for (;;) {
        int n = bus_poll(w->consumer, batches, max_batches, 100);
        if (n == -ESHUTDOWN) break;
        if (n < 0) continue;
        int64_t now_ms = clock_mono_ms();
        if (now_ms >= next_retention_ms) {
            uint32_t ranges = 0;
            if (store_apply_retention(w->db, clock_wall_us(), &ranges) == 0 && ranges)
                LOG_INFO(MOD, "retention removed day ranges=%u", ranges);
            next_retention_ms = now_ms + (int64_t)w->cfg->store.retention_check_interval_s * 1000;
        }
        if (n == 0) continue;
        /* Respect the byte bound of a group: write what fits, keep the rest for the next. */
        size_t count = 0;
        while (count < (size_t)n) {
            size_t start = count;
            uint64_t bytes = 0;
            while (count < (size_t)n && (count == start || bytes < w->cfg->store.group_commit_max_bytes)) {
                bus_batch *b = batches[count];
                group[count - start] = (store_batch){b->tenant, b->tenant_hash, b->agent_id, b->agent_hash,
                                                     b->seq, b->events, b->event_count};
                bytes += b->arena.bytes_reserved;
                count++;
            }
            uint32_t backoff_ms = 50;
            for (;;) {
                store_write_result res;
                int64_t t0 = clock_mono_us();
                int rc = store_write_group(w->db, group, count - start, &res);
                if (rc == 0) {
                    atomic_fetch_add(&w->commit_us_sum, (uint64_t)(clock_mono_us() - t0));
                    atomic_fetch_add(&w->groups, 1);
                    atomic_fetch_add(&w->batches, count - start);
                    atomic_fetch_add(&w->events, res.events_written);
                    break;
                }
                atomic_fetch_add(&w->write_errors, 1);
                LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1,
                                "group commit failed, retrying in %u ms (ingest is paused meanwhile): %s", backoff_ms,
                                strerror(-rc));
                struct timespec ts = {backoff_ms / 1000, (long)(backoff_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
                if (backoff_ms < 5000) backoff_ms *= 2;
            }
            bus_done(w->consumer, batches + start, count - start); /* durable: acks go out */
        }
    }
    free(batches);
    free(group);
    return NULL;
}

int store_worker_start(store_worker *w, store *db, bus *b, const mamori_config *cfg)
{
    memset(w, 0, sizeof *w);
    w->db = db;
    w->cfg = cfg;
    int rc = bus_consumer_open(b, "store", 0, &w->consumer);
    if (rc) return rc;
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc) {
        bus_consumer_close(w->consumer);
        return -rc;
    }
    return 0;
}

void store_worker_join(store_worker *w)
{
    pthread_join(w->thread, NULL);
    bus_consumer_close(w->consumer);
}
