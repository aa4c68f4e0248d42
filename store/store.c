/* store/store.c — opening and closing the store: RocksDB column families and their tuning
 * (compression, filters, block cache, compaction), loading the durable seqs, tenants and
 * counters, replaying the pending-index log, and the small things around them (stats,
 * metadata, full compaction). The tuning is explained in docs/storage.md. */
#include "internal.h"

#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const cf_names[CF_COUNT] = {
    [CF_DEFAULT] = "default", [CF_EVENTS] = "events", [CF_INDEX] = "index",   [CF_ALERTS] = "alerts",
    [CF_AGENTS] = "agents",   [CF_COMMANDS] = "commands", [CF_FILES] = "files", [CF_OUTBOX] = "outbox",
    [CF_STATE] = "state",     [CF_META] = "meta",
};

void store_options_default(store_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->sync = true;
    opt->retention_days = 30;
    opt->block_cache_bytes = (size_t)256 << 20;
    opt->write_buffer_bytes = (size_t)128 << 20;
    opt->zstd_level = 3;
    opt->zstd_dict_bytes = 64 * 1024;
    opt->index_slice_ms = 10000;
    opt->index_slice_max_bytes = (size_t)256 << 20;
}

int store_rocks_error(char *err, const char *what)
{
    int rc = -EIO;
    if (strstr(err, "No space left") || strstr(err, "NoSpace")) rc = -ENOSPC;
    else if (strncmp(err, "Invalid argument", 16) == 0) rc = -EINVAL;
    else if (strncmp(err, "NotFound", 8) == 0 || strncmp(err, "Not found", 9) == 0) rc = -ENOENT;
    else if (strstr(err, "Busy") || strstr(err, "TryAgain") || strstr(err, "Try again")) rc = -EAGAIN;
    LOG_RATELIMITED(LOG_LEVEL_ERROR, "store", 5, "%s failed: %s", what, err);
    rocksdb_free(err);
    return rc;
}

/* ---- the index prefix extractor: everything but min_ts | slice_id, i.e. one term ---- */

static char *ixterm_transform(void *state, const char *key, size_t length, size_t *dst_length)
{
    (void)state;
    *dst_length = length - IX_KEY_SUFFIX_BYTES;
    return (char *)key;
}

static unsigned char ixterm_in_domain(void *state, const char *key, size_t length)
{
    (void)state;
    (void)key;
    return length >= IX_KEY_PREFIX_BYTES + 2 + IX_KEY_SUFFIX_BYTES;
}

static unsigned char ixterm_in_range(void *state, const char *key, size_t length)
{
    (void)state;
    (void)key;
    (void)length;
    return 0;
}

static const char *ixterm_name(void *state)
{
    (void)state;
    return "mamori.ixterm.v1";
}

static void noop_destructor(void *state) { (void)state; }

/* ---- column family tuning ---- */

static rocksdb_options_t *cf_options_for(store *s, enum store_cf cf)
{
    const store_options *o = &s->opt;
    rocksdb_options_t *co = rocksdb_options_create();
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, s->block_cache);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
    rocksdb_block_based_options_set_format_version(t, 5);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(co, 1);
    /* fast compression where data is rewritten soon, zstd where it stays */
    rocksdb_options_set_compression(co, rocksdb_lz4_compression);
    rocksdb_options_set_bottommost_compression(co, rocksdb_zstd_compression);
    switch (cf) {
    case CF_EVENTS:
        /* Point reads by key (search fetching postings' events): bloom filters above the
         * last level only, where most lookups that can miss happen. */
        rocksdb_block_based_options_set_block_size(t, 32 * 1024);
        rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
        rocksdb_options_set_optimize_filters_for_hits(co, 1);
        rocksdb_options_set_write_buffer_size(co, o->write_buffer_bytes);
        rocksdb_options_set_max_write_buffer_number(co, 4);
        rocksdb_options_set_target_file_size_base(co, 64u << 20);
        rocksdb_options_set_max_bytes_for_level_base(co, (uint64_t)o->write_buffer_bytes * 4);
        break;
    case CF_INDEX:
        /* Exact lookups seek one term: a bloom over the term (prefix extractor) skips the
         * files that do not hold it. Whole keys are never looked up. */
        rocksdb_block_based_options_set_block_size(t, 16 * 1024);
        rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
        rocksdb_block_based_options_set_whole_key_filtering(t, 0);
        rocksdb_options_set_prefix_extractor(co, rocksdb_slicetransform_create(NULL, noop_destructor, ixterm_transform,
                                                                               ixterm_in_domain, ixterm_in_range,
                                                                               ixterm_name));
        rocksdb_options_set_write_buffer_size(co, MAMORI_MAX(o->write_buffer_bytes / 2, (size_t)4 << 20));
        rocksdb_options_set_max_write_buffer_number(co, 4);
        rocksdb_options_set_target_file_size_base(co, 64u << 20);
        rocksdb_options_set_max_bytes_for_level_base(co, (uint64_t)o->write_buffer_bytes * 2);
        break;
    default:
        rocksdb_block_based_options_set_block_size(t, 8 * 1024);
        rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
        rocksdb_options_set_write_buffer_size(co, 8u << 20);
        rocksdb_options_set_max_write_buffer_number(co, 2);
        break;
    }
    if (cf == CF_EVENTS || cf == CF_INDEX) {
        /* -14: zstd's default window; strategy 0 = default */
        rocksdb_options_set_bottommost_compression_options(co, -14, o->zstd_level, 0, (int)o->zstd_dict_bytes, 1);
        if (o->zstd_dict_bytes)
            rocksdb_options_set_bottommost_compression_options_zstd_max_train_bytes(co, (int)o->zstd_dict_bytes * 100, 1);
    } else {
        rocksdb_options_set_bottommost_compression_options(co, -14, o->zstd_level, 0, 0, 1);
    }
    rocksdb_options_set_block_based_table_factory(co, t);
    rocksdb_block_based_options_destroy(t);
    return co;
}

/* Slice files are written once and compacted soon (they overlap every earlier slice, so
 * they land in L0): compress them fast; compaction applies zstd with a dictionary. */
static rocksdb_options_t *slice_file_options(store *s)
{
    rocksdb_options_t *o = cf_options_for(s, CF_INDEX);
    rocksdb_options_set_bottommost_compression(o, rocksdb_lz4_compression);
    rocksdb_options_set_bottommost_compression_options(o, -14, 0, 0, 0, 0);
    rocksdb_options_set_bottommost_compression_options_zstd_max_train_bytes(o, 0, 0);
    return o;
}

static rocksdb_options_t *db_options_for(const store_options *o)
{
    (void)o;
    rocksdb_options_t *d = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(d, 1);
    rocksdb_options_set_create_missing_column_families(d, 1);
    /* 2-core target: one flush and a couple of compactions in parallel at most */
    rocksdb_options_set_max_background_jobs(d, 3);
    rocksdb_options_set_max_subcompactions(d, 1);
    rocksdb_options_set_bytes_per_sync(d, 1u << 20);
    rocksdb_options_set_max_total_wal_size(d, (uint64_t)1 << 30);
    rocksdb_options_set_max_log_file_size(d, 16u << 20);
    rocksdb_options_set_keep_log_file_num(d, 4);
    /* Debian's librocksdb 7.8 keeps its assertions: after a failed append (disk full) the
     * next append to the same file aborts the process. Its info LOG would be the first to
     * hit that on an I/O error, so it only gets fatal messages; the store logs errors
     * itself (store_rocks_error). */
    rocksdb_options_set_info_log_level(d, 4 /* FATAL_LEVEL */);
    return d;
}

/* ---- open / close ---- */

static int load_counters(store *s)
{
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(s->db, s->read_options, s->cf[CF_STATE], STORE_SLICE_NEXT_KEY,
                             sizeof STORE_SLICE_NEXT_KEY - 1, &vlen, &err);
    if (err) return store_rocks_error(err, "reading slice counter");
    s->next_slice_id = (v && vlen == 8) ? mamori_get_be64((const uint8_t *)v) : 1;
    rocksdb_free(v);
    v = rocksdb_get_cf(s->db, s->read_options, s->cf[CF_STATE], STORE_SLICE_OPEN_KEY, sizeof STORE_SLICE_OPEN_KEY - 1,
                       &vlen, &err);
    if (err) return store_rocks_error(err, "reading slice marker");
    if (v && vlen == 24) s->next_slice_id = MAMORI_MAX(s->next_slice_id, mamori_get_be64((const uint8_t *)v) + 1);
    rocksdb_free(v);

    uint8_t last[STORE_IXLOG_KEY_BYTES];
    memcpy(last, STORE_IXLOG_PREFIX, STORE_IXLOG_PREFIX_LEN);
    memset(last + STORE_IXLOG_PREFIX_LEN, 0xFF, 8);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_STATE]);
    rocksdb_iter_seek_for_prev(it, (const char *)last, sizeof last);
    s->next_group_no = 1;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen == STORE_IXLOG_KEY_BYTES && memcmp(k, STORE_IXLOG_PREFIX, STORE_IXLOG_PREFIX_LEN) == 0)
            s->next_group_no = mamori_get_be64((const uint8_t *)k + STORE_IXLOG_PREFIX_LEN) + 1;
    }
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? store_rocks_error(err, "reading pending-index log position") : 0;
}

/* <path>/ixtmp holds slice files between writing and ingestion; a crash can leave one. */
static int prepare_tmp_dir(store *s, char *err, size_t err_len)
{
    size_t n = strlen(s->path) + sizeof STORE_SLICE_TMP_DIR + 2;
    s->tmp_dir = mamori_xmalloc(n);
    snprintf(s->tmp_dir, n, "%s/%s", s->path, STORE_SLICE_TMP_DIR);
    if (mkdir(s->tmp_dir, 0750) != 0 && errno != EEXIST) {
        int rc = -errno;
        snprintf(err, err_len, "store %s: cannot create directory: %s", s->tmp_dir, strerror(errno));
        return rc;
    }
    DIR *d = opendir(s->tmp_dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "slice-", 6) != 0) continue;
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", s->tmp_dir, e->d_name);
        unlink(file);
    }
    closedir(d);
    return 0;
}

static int check_options(const store_options *o, char *err, size_t err_len)
{
    const char *bad = NULL;
    if (!o->path || !o->path[0]) bad = "path is empty";
    else if (o->index_slice_ms == 0) bad = "index_slice_ms must be > 0";
    else if (o->index_slice_max_bytes < ((size_t)1 << 20)) bad = "index_slice_max_bytes must be >= 1 MiB";
    else if (o->write_buffer_bytes < ((size_t)1 << 20)) bad = "write_buffer_bytes must be >= 1 MiB";
    else if (o->zstd_level < 1 || o->zstd_level > 22) bad = "zstd_level must be in 1..22";
    else if (o->zstd_dict_bytes > (1u << 20)) bad = "zstd_dict_bytes must be <= 1 MiB";
    else if (o->tenant_retention_count && !o->tenant_retention) bad = "tenant_retention is NULL";
    if (!bad) return 0;
    snprintf(err, err_len, "store options: %s", bad);
    return -EINVAL;
}

static void free_store(store *s)
{
    tw_stop(s); /* no-op unless open failed after starting it */
    ix_encoder_fini(&s->encoder);
    ix_slice_destroy(s->active);
    for (ix_slice *sl = s->closed_head; sl;) {
        ix_slice *next = sl->next;
        ix_slice_destroy(sl);
        sl = next;
    }
    if (s->env_options) rocksdb_envoptions_destroy(s->env_options);
    if (s->ingest_options) rocksdb_ingestexternalfileoptions_destroy(s->ingest_options);
    if (s->slice_file_options) rocksdb_options_destroy(s->slice_file_options);
    store_free_writer_state(s);
    store_free_registries(s);
    if (s->db) {
        for (int i = 0; i < CF_COUNT; i++)
            if (s->cf[i]) rocksdb_column_family_handle_destroy(s->cf[i]);
        rocksdb_close(s->db);
    }
    for (int i = 0; i < CF_COUNT; i++)
        if (s->cf_options[i]) rocksdb_options_destroy(s->cf_options[i]);
    if (s->db_options) rocksdb_options_destroy(s->db_options);
    if (s->block_cache) rocksdb_cache_destroy(s->block_cache);
    if (s->write_options) rocksdb_writeoptions_destroy(s->write_options);
    if (s->ix_write_options) rocksdb_writeoptions_destroy(s->ix_write_options);
    if (s->read_options) rocksdb_readoptions_destroy(s->read_options);
    for (size_t i = 0; i < s->opt.tenant_retention_count; i++) free((char *)s->overrides[i].tenant);
    free(s->overrides);
    free(s->path);
    free(s->tmp_dir);
    pthread_rwlock_destroy(&s->ix_rw);
    pthread_mutex_destroy(&s->ix_mu);
    pthread_cond_destroy(&s->ix_cv);
    pthread_mutex_destroy(&s->agents_mu);
    pthread_mutex_destroy(&s->tenants_mu);
    pthread_mutex_destroy(&s->tw_mu);
    pthread_cond_destroy(&s->tw_cv);
    free(s);
}

static void init_sync(store *s)
{
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* the writer inserting a group must not starve behind a stream of lookups */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->ix_rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->ix_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->ix_mu, NULL);
    pthread_mutex_init(&s->agents_mu, NULL);
    pthread_mutex_init(&s->tenants_mu, NULL);
    pthread_mutex_init(&s->tw_mu, NULL);
    pthread_cond_init(&s->tw_cv, NULL);
}

int store_open(const store_options *opt, store **out, char *err, size_t err_len)
{
    MAMORI_ASSERT(opt && out && (err || err_len == 0));
    *out = NULL;
    int rc = check_options(opt, err, err_len);
    if (rc) return rc;
    if (mkdir(opt->path, 0750) != 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, err_len, "store %s: cannot create directory: %s", opt->path, strerror(errno));
        return rc;
    }
    store *s = mamori_xcalloc(1, sizeof *s);
    init_sync(s);
    s->opt = *opt;
    s->path = mamori_xstrdup(opt->path);
    s->opt.path = s->path;
    s->overrides = mamori_xcalloc(opt->tenant_retention_count ? opt->tenant_retention_count : 1, sizeof *s->overrides);
    for (size_t i = 0; i < opt->tenant_retention_count; i++) {
        s->overrides[i].tenant = mamori_xstrdup(opt->tenant_retention[i].tenant);
        s->overrides[i].days = opt->tenant_retention[i].days;
    }
    s->opt.tenant_retention = s->overrides;
    ix_encoder_init(&s->encoder);
    s->active = ix_slice_create();
    buf_init(&s->ixlog);

    s->block_cache = rocksdb_cache_create_lru(MAMORI_MAX(opt->block_cache_bytes, (size_t)8 << 20));
    s->db_options = db_options_for(opt);
    for (int i = 0; i < CF_COUNT; i++) s->cf_options[i] = cf_options_for(s, (enum store_cf)i);
    char *rerr = NULL;
    s->db = rocksdb_open_column_families(s->db_options, s->path, CF_COUNT, (const char *const *)cf_names,
                                         (const rocksdb_options_t *const *)s->cf_options, s->cf, &rerr);
    if (rerr) {
        snprintf(err, err_len, "store %s: %s", s->path, rerr);
        rc = store_rocks_error(rerr, "open");
        s->db = NULL;
        goto fail;
    }
    s->write_options = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->write_options, opt->sync);
    s->ix_write_options = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->ix_write_options, 0);
    s->read_options = rocksdb_readoptions_create();
    /* the index column family has a prefix extractor: plain iterators must not stop at
     * prefix boundaries */
    rocksdb_readoptions_set_total_order_seek(s->read_options, 1);
    s->wb = rocksdb_writebatch_create();
    s->env_options = rocksdb_envoptions_create();
    s->slice_file_options = slice_file_options(s);
    s->ingest_options = rocksdb_ingestexternalfileoptions_create();
    rocksdb_ingestexternalfileoptions_set_move_files(s->ingest_options, 1);
    rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(s->ingest_options, 1);
    if ((rc = prepare_tmp_dir(s, err, err_len))) goto fail;

    if ((rc = store_load_agents(s)) || (rc = store_load_tenants(s)) || (rc = load_counters(s))) {
        snprintf(err, err_len, "store %s: loading state failed (%s)", s->path, strerror(-rc));
        goto fail;
    }
    if ((rc = store_recover_index(s))) {
        snprintf(err, err_len, "store %s: replaying the pending-index log failed (%s)", s->path, strerror(-rc));
        goto fail;
    }
    if ((rc = tw_start(s)) == 0) rc = ix_thread_start(s);
    if (rc) {
        snprintf(err, err_len, "store %s: cannot start the index thread (%s)", s->path, strerror(-rc));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    free_store(s);
    return rc;
}

void store_close(store *s)
{
    if (!s) return;
    tw_stop(s);
    ix_thread_stop(s);
    free_store(s);
}

/* ---- stats, compaction, metadata ---- */

static uint64_t prop_u64(store *s, enum store_cf cf, const char *name)
{
    uint64_t v = 0;
    if (rocksdb_property_int_cf(s->db, s->cf[cf], name, &v) != 0) return 0;
    return v;
}

void store_get_stats(store *s, store_stats *out)
{
    MAMORI_ASSERT(s && out);
    memset(out, 0, sizeof *out);
    out->events_written = atomic_load_explicit(&s->events_written, memory_order_relaxed);
    out->batches_written = atomic_load_explicit(&s->batches_written, memory_order_relaxed);
    out->batches_duplicate = atomic_load_explicit(&s->batches_duplicate, memory_order_relaxed);
    out->group_commits = atomic_load_explicit(&s->group_commits, memory_order_relaxed);
    out->group_commit_errors = atomic_load_explicit(&s->group_commit_errors, memory_order_relaxed);
    out->index_slices_flushed = atomic_load_explicit(&s->slices_flushed, memory_order_relaxed);
    out->index_entries_pending = atomic_load_explicit(&s->entries_pending, memory_order_relaxed);
    out->retention_ranges_deleted = atomic_load_explicit(&s->retention_ranges_deleted, memory_order_relaxed);
    out->index_slice_flush_us_total = atomic_load_explicit(&s->slice_flush_us_total, memory_order_relaxed);
    out->index_slice_flush_us_max = atomic_load_explicit(&s->slice_flush_us_max, memory_order_relaxed);
    out->index_writer_waits = atomic_load_explicit(&s->writer_waits, memory_order_relaxed);
    out->index_events_recovered = atomic_load_explicit(&s->recovered_events, memory_order_relaxed);
    out->events_sst_bytes = prop_u64(s, CF_EVENTS, "rocksdb.live-sst-files-size");
    out->index_sst_bytes = prop_u64(s, CF_INDEX, "rocksdb.live-sst-files-size");
    for (int i = 0; i < CF_COUNT; i++) out->total_sst_bytes += prop_u64(s, (enum store_cf)i, "rocksdb.live-sst-files-size");
    out->estimated_events = prop_u64(s, CF_EVENTS, "rocksdb.estimate-num-keys");
}

int store_compact_all(store *s)
{
    MAMORI_ASSERT(s);
    int rc = store_flush_index(s);
    if (rc) return rc;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    /* rewrite the last level too, so every file gets zstd with a trained dictionary */
    rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
    for (int i = 0; i < CF_COUNT && rc == 0; i++) {
        char *err = NULL;
        rocksdb_flush_cf(s->db, fo, s->cf[i], &err);
        if (err) {
            rc = store_rocks_error(err, "flush");
            break;
        }
        rocksdb_compact_range_cf_opt(s->db, s->cf[i], co, NULL, 0, NULL, 0);
    }
    rocksdb_compactoptions_destroy(co);
    rocksdb_flushoptions_destroy(fo);
    return rc;
}

int store_meta_put(store *s, const char *key, const void *value, size_t len)
{
    MAMORI_ASSERT(s && key && (value || len == 0));
    char *err = NULL;
    rocksdb_put_cf(s->db, s->write_options, s->cf[CF_META], key, strlen(key), value, len, &err);
    return err ? store_rocks_error(err, "meta put") : 0;
}

int store_cf_get(store *s, enum store_cf cf, const void *key, size_t key_len, buf *out, const char *what)
{
    char *err = NULL;
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned_cf(s->db, s->read_options, s->cf[cf], key, key_len, &err);
    if (err) return store_rocks_error(err, what);
    if (!v) return -ENOENT;
    size_t len;
    const char *p = rocksdb_pinnableslice_value(v, &len);
    buf_clear(out);
    buf_append(out, p, len);
    rocksdb_pinnableslice_destroy(v);
    return 0;
}

int store_cf_scan(store *s, enum store_cf cf, const void *prefix, size_t prefix_len, store_state_fn fn, void *ctx,
                  const char *what)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[cf]);
    int rc = 0;
    for (rocksdb_iter_seek(it, prefix, prefix_len); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < prefix_len || memcmp(k, prefix, prefix_len) != 0) break;
        const char *v = rocksdb_iter_value(it, &vlen);
        if (fn(ctx, k, klen, v, vlen)) {
            rc = 1;
            break;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) rc = store_rocks_error(err, what);
    return rc;
}

int store_meta_get(store *s, const char *key, buf *value_out)
{
    MAMORI_ASSERT(s && key && value_out);
    return store_cf_get(s, CF_META, key, strlen(key), value_out, "meta get");
}
