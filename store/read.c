/* store/read.c — reading events back by address and by time range: the primitives the
 * search layer, the API and tools use once the index (or a scan) has chosen events. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int store_get_event(store *s, uint64_t tenant_hash, int64_t ts_us, uint64_t agent_hash, uint64_t seq,
                    uint32_t index, buf *json_out)
{
    MAMORI_ASSERT(s && json_out);
    uint8_t key[STORE_EVENT_KEY_BYTES];
    store_event_key(key, tenant_hash, ts_us, agent_hash, seq, index);
    return store_cf_get(s, CF_EVENTS, key, sizeof key, json_out, "event get");
}

typedef int (*key_visit_fn)(void *ctx, const store_event_ref *ref, const char *value, size_t len);

/* Visits the events of one tenant with from_us <= ts < to_us in key order. Keys are
 * tenant | day | ts | ..., and day grows with ts, so the range is one contiguous run. */
static int scan_range(store *s, uint64_t tenant_hash, int64_t from_us, int64_t to_us, bool want_values,
                      key_visit_fn visit, void *ctx)
{
    if (from_us < 0) from_us = 0;
    if (from_us >= to_us) return 0;
    uint8_t start[20], bound[12];
    mamori_put_be64(start, tenant_hash);
    mamori_put_be32(start + 8, store_day_of_us(from_us));
    mamori_put_be64(start + 12, (uint64_t)from_us);
    uint32_t last_day = store_day_of_us(to_us - 1);
    bool has_bound = true;
    if (last_day < UINT32_MAX) {
        mamori_put_be64(bound, tenant_hash);
        mamori_put_be32(bound + 8, last_day + 1);
    } else if (tenant_hash < UINT64_MAX) {
        mamori_put_be64(bound, tenant_hash + 1);
        mamori_put_be32(bound + 8, 0);
    } else {
        has_bound = false;
    }
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (has_bound) rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)bound, sizeof bound);
    /* a scan reads each block once: caching them would only evict what point reads reuse */
    rocksdb_readoptions_set_fill_cache(ro, 0);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[CF_EVENTS]);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)start, sizeof start); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen = 0;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != STORE_EVENT_KEY_BYTES || mamori_get_be64(k) != tenant_hash) break;
        store_event_ref ref;
        store_event_key_decode(k, NULL, NULL, &ref);
        if (ref.ts_us >= to_us) break;
        if (ref.ts_us < from_us) continue;
        const char *v = want_values ? rocksdb_iter_value(it, &vlen) : NULL;
        if (visit(ctx, &ref, v, vlen)) {
            rc = 1;
            break;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err) return store_rocks_error(err, "event scan");
    return rc;
}

static int count_visit(void *ctx, const store_event_ref *ref, const char *value, size_t len)
{
    (void)ref;
    (void)value;
    (void)len;
    (*(uint64_t *)ctx)++;
    return 0;
}

int store_count_events(store *s, const char *tenant, int64_t from_us, int64_t to_us, uint64_t *count)
{
    MAMORI_ASSERT(s && count);
    *count = 0;
    if (tenant) {
        int rc = scan_range(s, event_tenant_hash(tenant), from_us, to_us, false, count_visit, count);
        return rc < 0 ? rc : 0;
    }
    pthread_mutex_lock(&s->tenants_mu);
    uint32_t n = s->tenant_count;
    uint64_t *hashes = mamori_xmalloc((n ? n : 1) * sizeof *hashes);
    for (uint32_t i = 0; i < n; i++) hashes[i] = s->tenants[i].hash;
    pthread_mutex_unlock(&s->tenants_mu);
    int rc = 0;
    for (uint32_t i = 0; i < n && rc >= 0; i++) rc = scan_range(s, hashes[i], from_us, to_us, false, count_visit, count);
    free(hashes);
    return rc < 0 ? rc : 0;
}

int store_event_bounds(store *s, const char *tenant, int64_t from_us, int64_t to_us, int64_t *first_us,
                       int64_t *last_us)
{
    MAMORI_ASSERT(s && tenant && first_us && last_us);
    *first_us = *last_us = -1;
    if (from_us < 0) from_us = 0;
    if (from_us >= to_us) return 0;
    uint64_t tenant_hash = event_tenant_hash(tenant);
    store_event_ref lo = {.ts_us = from_us}, hi = {.ts_us = to_us};
    uint8_t start[STORE_EVENT_KEY_BYTES], end[STORE_EVENT_KEY_BYTES];
    store_event_key_full(start, tenant_hash, &lo);
    store_event_key_full(end, tenant_hash, &hi); /* the first key at to_us: everything before is < to */
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[CF_EVENTS]);
    size_t klen;
    rocksdb_iter_seek(it, (const char *)start, sizeof start);
    if (rocksdb_iter_valid(it)) {
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        store_event_ref ref;
        if (klen == STORE_EVENT_KEY_BYTES && mamori_get_be64(k) == tenant_hash) {
            store_event_key_decode(k, NULL, NULL, &ref);
            if (ref.ts_us < to_us) *first_us = ref.ts_us;
        }
    }
    if (*first_us >= 0) {
        rocksdb_iter_seek_for_prev(it, (const char *)end, sizeof end);
        if (rocksdb_iter_valid(it)) {
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
            store_event_ref ref;
            if (klen == STORE_EVENT_KEY_BYTES && mamori_get_be64(k) == tenant_hash) {
                store_event_key_decode(k, NULL, NULL, &ref);
                if (ref.ts_us >= to_us) ref.ts_us = to_us - 1; /* the key at exactly `end` */
                *last_us = ref.ts_us;
            }
        }
        if (*last_us < *first_us) *last_us = *first_us;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err) return store_rocks_error(err, "event bounds");
    return 0;
}

typedef struct scan_ctx {
    store_event_fn fn;
    void *ctx;
} scan_ctx;

static int scan_visit(void *arg, const store_event_ref *ref, const char *value, size_t len)
{
    scan_ctx *c = arg;
    return c->fn(c->ctx, ref, value, len);
}

int store_scan_events(store *s, const char *tenant, int64_t from_us, int64_t to_us, store_event_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && tenant && fn);
    scan_ctx c = {.fn = fn, .ctx = ctx};
    int rc = scan_range(s, event_tenant_hash(tenant), from_us, to_us, true, scan_visit, &c);
    return rc < 0 ? rc : 0;
}
