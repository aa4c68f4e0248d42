/* store/registry.c — the agent registry beside the durable seqs in the agents column family:
 * tag 0x03 holds the record the response service keeps (first/last seen, address, versions,
 * host facts, online, reported isolation) as one JSON object, tag 0x04 the desired isolation
 * that store_action_create writes with an isolate/release action. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- registry records ---- */

int store_agent_info_put(store *s, uint64_t tenant_hash, uint64_t agent_hash, const char *json, size_t len)
{
    MAMORI_ASSERT(s && json);
    uint8_t key[STORE_AGENT_KEY_BYTES];
    store_agent_key_tag(key, tenant_hash, agent_hash, STORE_AGENT_TAG_INFO);
    char *err = NULL;
    /* not synced: a record is rewritten on every connect; losing the last one to a power
     * loss costs a stale last_seen, and syncing it would cost one fsync per reconnecting agent */
    rocksdb_put_cf(s->db, s->ix_write_options, s->cf[CF_AGENTS], (const char *)key, sizeof key, json, len, &err);
    return err ? store_rocks_error(err, "agent registry put") : 0;
}

static int get_tag(store *s, uint64_t tenant_hash, uint64_t agent_hash, uint8_t tag, buf *out)
{
    uint8_t key[STORE_AGENT_KEY_BYTES];
    store_agent_key_tag(key, tenant_hash, agent_hash, tag);
    return store_cf_get(s, CF_AGENTS, key, sizeof key, out, "agent registry get");
}

int store_agent_info_get(store *s, uint64_t tenant_hash, uint64_t agent_hash, buf *out)
{
    MAMORI_ASSERT(s && out);
    return get_tag(s, tenant_hash, agent_hash, STORE_AGENT_TAG_INFO, out);
}

/* Walks the agents column family from `prefix` (tenant or nothing), calling fn for keys with
 * the tag. */
typedef int (*tag_fn)(void *ctx, const uint8_t *key, const char *v, size_t vlen);
static int scan_tag(store *s, const uint8_t *prefix, size_t plen, uint8_t tag, tag_fn fn, void *ctx)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_AGENTS]);
    int rc = 0;
    if (plen) rocksdb_iter_seek(it, (const char *)prefix, plen);
    else rocksdb_iter_seek_to_first(it);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (plen && (klen < plen || memcmp(k, prefix, plen) != 0)) break;
        if (klen != STORE_AGENT_KEY_BYTES || k[16] != tag) continue;
        const char *v = rocksdb_iter_value(it, &vlen);
        if (fn(ctx, k, v, vlen)) {
            rc = 1;
            break;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? store_rocks_error(err, "agent registry scan") : rc;
}

typedef struct info_scan {
    store_agent_info_fn fn;
    void *ctx;
} info_scan;

static int info_one(void *ctx, const uint8_t *key, const char *v, size_t vlen)
{
    info_scan *is = ctx;
    return is->fn(is->ctx, mamori_get_be64(key + 8), v, vlen);
}

int store_agent_info_scan(store *s, uint64_t tenant_hash, store_agent_info_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && fn);
    uint8_t prefix[8];
    mamori_put_be64(prefix, tenant_hash);
    info_scan is = {fn, ctx};
    return scan_tag(s, prefix, sizeof prefix, STORE_AGENT_TAG_INFO, info_one, &is);
}

typedef struct info_all_scan {
    store_agent_info_all_fn fn;
    void *ctx;
} info_all_scan;

static int info_all_one(void *ctx, const uint8_t *key, const char *v, size_t vlen)
{
    info_all_scan *is = ctx;
    return is->fn(is->ctx, mamori_get_be64(key), mamori_get_be64(key + 8), v, vlen);
}

int store_agent_info_scan_all(store *s, store_agent_info_all_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && fn);
    info_all_scan is = {fn, ctx};
    return scan_tag(s, NULL, 0, STORE_AGENT_TAG_INFO, info_all_one, &is);
}

int store_agent_isolation_get(store *s, uint64_t tenant_hash, uint64_t agent_hash, int *desired, int64_t *at_us)
{
    MAMORI_ASSERT(s && desired && at_us);
    buf v;
    buf_init(&v);
    int rc = get_tag(s, tenant_hash, agent_hash, STORE_AGENT_TAG_ISOLATION, &v);
    *desired = STORE_ISOLATION_NONE;
    *at_us = 0;
    if (rc == 0 && v.len == 9) {
        *desired = (uint8_t)v.data[0] == STORE_ISOLATION_ISOLATED ? STORE_ISOLATION_ISOLATED : STORE_ISOLATION_NONE;
        *at_us = (int64_t)mamori_get_be64((const uint8_t *)v.data + 1);
    }
    buf_fini(&v);
    return rc == -ENOENT ? 0 : rc;
}

typedef struct iso_scan {
    store_isolation_fn fn;
    void *ctx;
} iso_scan;

static int iso_one(void *ctx, const uint8_t *key, const char *v, size_t vlen)
{
    iso_scan *is = ctx;
    if (vlen != 9) return 0;
    int d = (uint8_t)v[0] == STORE_ISOLATION_ISOLATED ? STORE_ISOLATION_ISOLATED : STORE_ISOLATION_NONE;
    return is->fn(is->ctx, mamori_get_be64(key), mamori_get_be64(key + 8), d,
                  (int64_t)mamori_get_be64((const uint8_t *)v + 1));
}

int store_agent_isolation_scan(store *s, store_isolation_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && fn);
    iso_scan is = {fn, ctx};
    return scan_tag(s, NULL, 0, STORE_AGENT_TAG_ISOLATION, iso_one, &is);
}
