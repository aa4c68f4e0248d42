/* store/ixthread.c — the slice writer: a background thread that closes the active slice
 * on its timer and writes closed slices (an ingested SST of postings, then the deletion of
 * the pending-index log entries they cover), and lets the writer and store_flush_index
 * wait for it. The writer thread never encodes or writes postings itself. */
#include "internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static uint32_t floor_cb(void *ctx, uint64_t tenant_hash) { return store_tenant_floor_day(ctx, tenant_hash); }

static void atomic_max(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed, memory_order_relaxed)) {
    }
}

void (*ix_test_hook)(int step);

typedef struct sst_ctx {
    rocksdb_sstfilewriter_t *w;
    char *err;
} sst_ctx;

static int sst_emit(void *ctx, const uint8_t *key, size_t klen, const char *value, size_t vlen)
{
    sst_ctx *c = ctx;
    rocksdb_sstfilewriter_put(c->w, (const char *)key, klen, value, vlen, &c->err);
    return c->err ? -1 : 0;
}

/* Postings of one slice become one SST file ingested into the index column family: no
 * WAL, no memtable, and the group commits never queue behind a large index write. The
 * steps, and why a crash between any two is safe:
 *   1. put `ixslice/open` = (slice_id, first group, last group) and sync the WAL: from
 *      now on recovery rebuilds exactly this slice, under this id;
 *   2. write the SST file (keys in order) and ingest it (atomic);
 *   3. one batch: delete the pending-log entries of the slice and the marker, advance
 *      `ixslice/next`.
 * A crash after 2 and before 3 makes recovery rebuild the same keys and values (the build
 * is deterministic), so ingesting them again overwrites rather than duplicates. */
int ix_write_slice_as(store *s, ix_slice *sl, uint64_t slice_id)
{
    int64_t t0 = clock_mono_us();
    char *err = NULL;
    uint64_t postings = 0, bytes = 0;
    if (sl->has_groups && sl->posting_count > 0) {
        uint8_t m[24];
        mamori_put_be64(m, slice_id);
        mamori_put_be64(m + 8, sl->first_group);
        mamori_put_be64(m + 16, sl->last_group);
        rocksdb_put_cf(s->db, s->ix_write_options, s->cf[CF_STATE], STORE_SLICE_OPEN_KEY,
                       sizeof STORE_SLICE_OPEN_KEY - 1, (const char *)m, sizeof m, &err);
        /* also makes the events the slice points to durable before their postings are */
        if (!err) rocksdb_flush_wal(s->db, 1, &err);
        if (err) return store_rocks_error(err, "index slice marker");
        if (ix_test_hook) ix_test_hook(1);
    }
    if (sl->posting_count > 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/slice-%016llx.sst", s->tmp_dir, (unsigned long long)slice_id);
        sst_ctx c = {.w = rocksdb_sstfilewriter_create(s->env_options, s->slice_file_options)};
        rocksdb_sstfilewriter_open(c.w, path, &c.err);
        int rc = c.err ? -1 : ix_slice_build(sl, slice_id, &s->encoder, floor_cb, s, sst_emit, &c, &postings, &bytes);
        if (rc == 0 && !c.err && postings > 0) rocksdb_sstfilewriter_finish(c.w, &c.err);
        rocksdb_sstfilewriter_destroy(c.w);
        if (c.err) {
            unlink(path);
            return store_rocks_error(c.err, "index slice file");
        }
        if (postings > 0) {
            const char *files[1] = {path};
            rocksdb_ingest_external_file_cf(s->db, s->cf[CF_INDEX], files, 1, s->ingest_options, &err);
        }
        unlink(path); /* moved (linked) into the store by the ingestion, or unused */
        if (err) return store_rocks_error(err, "index slice ingestion");
        if (ix_test_hook) ix_test_hook(2);
    }
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    if (sl->has_groups) {
        uint8_t from[STORE_IXLOG_KEY_BYTES], to[STORE_IXLOG_KEY_BYTES];
        store_ixlog_key(from, sl->first_group);
        store_ixlog_key(to, sl->last_group + 1);
        rocksdb_writebatch_delete_range_cf(wb, s->cf[CF_STATE], (const char *)from, sizeof from, (const char *)to,
                                           sizeof to);
    }
    /* unconditionally: recovery may be finishing a marker left by a crashed run */
    rocksdb_writebatch_delete_cf(wb, s->cf[CF_STATE], STORE_SLICE_OPEN_KEY, sizeof STORE_SLICE_OPEN_KEY - 1);
    uint8_t next[8];
    mamori_put_be64(next, slice_id + 1);
    rocksdb_writebatch_put_cf(wb, s->cf[CF_STATE], STORE_SLICE_NEXT_KEY, sizeof STORE_SLICE_NEXT_KEY - 1,
                              (const char *)next, sizeof next);
    rocksdb_write(s->db, s->ix_write_options, wb, &err);
    rocksdb_writebatch_destroy(wb);
    if (err) return store_rocks_error(err, "index slice commit");
    if (s->next_slice_id <= slice_id) s->next_slice_id = slice_id + 1;
    uint64_t us = (uint64_t)(clock_mono_us() - t0);
    atomic_fetch_add_explicit(&s->slices_flushed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->slice_flush_us_total, us, memory_order_relaxed);
    atomic_max(&s->slice_flush_us_max, us);
    LOG_DEBUG("store", "index slice written slice_id=%llu events=%u postings=%llu bytes=%llu us=%llu",
              (unsigned long long)slice_id, sl->event_count, (unsigned long long)postings,
              (unsigned long long)bytes, (unsigned long long)us);
    return 0;
}

int ix_write_slice(store *s, ix_slice *sl) { return ix_write_slice_as(s, sl, s->next_slice_id); }

void ix_close_active_locked(store *s)
{
    if (ix_slice_empty(s->active)) return;
    ix_slice *sl = s->active;
    sl->next = NULL;
    if (s->closed_tail) s->closed_tail->next = sl;
    else s->closed_head = sl;
    s->closed_tail = sl;
    s->closed_count++;
    s->active = ix_slice_create();
    pthread_cond_broadcast(&s->ix_cv);
}

static void timed_wait_ms(store *s, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&s->ix_cv, &s->ix_mu, &ts);
}

/* Closes the active slice if it is older than index_slice_ms. Called with ix_mu held;
 * returns with it held (takes ix_rw first, in lock order). */
static void close_if_due(store *s)
{
    pthread_mutex_unlock(&s->ix_mu);
    pthread_rwlock_wrlock(&s->ix_rw);
    pthread_mutex_lock(&s->ix_mu);
    if (!ix_slice_empty(s->active) && clock_mono_ms() - s->active->opened_mono_ms >= (int64_t)s->opt.index_slice_ms)
        ix_close_active_locked(s);
    pthread_rwlock_unlock(&s->ix_rw);
}

static void *ix_thread_main(void *arg)
{
    store *s = arg;
    pthread_setname_np(pthread_self(), "store-index");
    int64_t period_ms = MAMORI_MAX(5, MAMORI_MIN(1000, (int64_t)s->opt.index_slice_ms / 4));
    pthread_mutex_lock(&s->ix_mu);
    for (;;) {
        if (s->closed_head) {
            ix_slice *sl = s->closed_head;
            pthread_mutex_unlock(&s->ix_mu);
            int rc = ix_write_slice(s, sl);
            if (rc == 0) {
                pthread_rwlock_wrlock(&s->ix_rw);
                pthread_mutex_lock(&s->ix_mu);
                s->closed_head = sl->next;
                if (!s->closed_head) s->closed_tail = NULL;
                s->closed_count--;
                s->ix_error = 0;
                atomic_fetch_sub_explicit(&s->entries_pending, sl->entries, memory_order_relaxed);
                pthread_cond_broadcast(&s->ix_cv);
                pthread_mutex_unlock(&s->ix_mu);
                pthread_rwlock_unlock(&s->ix_rw);
                ix_slice_destroy(sl);
                pthread_mutex_lock(&s->ix_mu);
                continue;
            }
            pthread_mutex_lock(&s->ix_mu);
            s->ix_error = rc;
            s->ix_failures++;
            pthread_cond_broadcast(&s->ix_cv);
            /* On shutdown give up: the pending-index log still holds what this slice held
             * and the next store_open rebuilds it. */
            if (s->ix_stop) break;
            timed_wait_ms(s, 1000);
            continue;
        }
        if (s->ix_stop) break;
        timed_wait_ms(s, period_ms);
        if (!s->closed_head && !s->ix_stop) close_if_due(s);
    }
    pthread_mutex_unlock(&s->ix_mu);
    return NULL;
}

int ix_thread_start(store *s)
{
    int rc = pthread_create(&s->ix_thread, NULL, ix_thread_main, s);
    if (rc) return -rc;
    s->ix_thread_started = true;
    return 0;
}

void ix_thread_stop(store *s)
{
    if (!s->ix_thread_started) return;
    pthread_rwlock_wrlock(&s->ix_rw);
    pthread_mutex_lock(&s->ix_mu);
    ix_close_active_locked(s);
    s->ix_stop = true;
    pthread_cond_broadcast(&s->ix_cv);
    pthread_mutex_unlock(&s->ix_mu);
    pthread_rwlock_unlock(&s->ix_rw);
    pthread_join(s->ix_thread, NULL);
    s->ix_thread_started = false;
}

int ix_wait_room(store *s)
{
    int rc = 0;
    pthread_mutex_lock(&s->ix_mu);
    if (s->closed_count >= IX_CLOSED_SLICES_MAX) atomic_fetch_add_explicit(&s->writer_waits, 1, memory_order_relaxed);
    while (s->closed_count >= IX_CLOSED_SLICES_MAX) {
        if (s->ix_error) {
            rc = s->ix_error;
            break;
        }
        pthread_cond_wait(&s->ix_cv, &s->ix_mu);
    }
    pthread_mutex_unlock(&s->ix_mu);
    return rc;
}

int store_flush_index(store *s)
{
    MAMORI_ASSERT(s);
    tw_sync(s);
    pthread_rwlock_wrlock(&s->ix_rw);
    pthread_mutex_lock(&s->ix_mu);
    ix_close_active_locked(s);
    pthread_rwlock_unlock(&s->ix_rw);
    uint64_t failures = s->ix_failures;
    int rc = 0;
    while (s->closed_count > 0) {
        if (s->ix_failures != failures) {
            rc = s->ix_error ? s->ix_error : -EIO;
            break;
        }
        pthread_cond_wait(&s->ix_cv, &s->ix_mu);
    }
    pthread_mutex_unlock(&s->ix_mu);
    return rc;
}
