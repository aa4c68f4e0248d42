/* store/listing.c — enumerations for the API: the agents a tenant has stored batches
 * from (with their durable seq), and meta entries under a key prefix (API keys). Read-only
 * additions; nothing here changes how data is written. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int store_list_agents(store *s, uint64_t tenant_hash, store_agent_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && fn);
    /* copy under the lock, call back outside it (ids are set once and live until close) */
    typedef struct {
        uint64_t hash, seq;
        const char *id;
    } row;
    pthread_mutex_lock(&s->agents_mu);
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->agent_count; i++)
        if (s->agents[i].tenant_hash == tenant_hash) n++;
    row *rows = mamori_xmalloc((n ? n : 1) * sizeof *rows);
    uint32_t w = 0;
    for (uint32_t i = 0; i < s->agent_count; i++) {
        if (s->agents[i].tenant_hash != tenant_hash) continue;
        rows[w++] = (row){s->agents[i].agent_hash, s->agents[i].durable_seq, s->agents[i].id};
    }
    pthread_mutex_unlock(&s->agents_mu);
    int rc = 0;
    for (uint32_t i = 0; i < w; i++)
        if (fn(ctx, rows[i].hash, rows[i].seq, rows[i].id)) {
            rc = 1;
            break;
        }
    free(rows);
    return rc;
}

/* store_meta_fn sees the keys as text: an adapter to the byte-oriented scan. */
struct meta_visit {
    store_meta_fn fn;
    void *ctx;
};

static int meta_visit(void *ctx, const void *key, size_t key_len, const void *value, size_t value_len)
{
    const struct meta_visit *m = ctx;
    return m->fn(m->ctx, key, key_len, value, value_len);
}

int store_meta_scan(store *s, const char *prefix, store_meta_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && prefix && fn);
    struct meta_visit m = {.fn = fn, .ctx = ctx};
    return store_cf_scan(s, CF_META, prefix, strlen(prefix), meta_visit, &m, "meta scan");
}

int store_meta_delete(store *s, const char *key)
{
    MAMORI_ASSERT(s && key);
    char *err = NULL;
    rocksdb_delete_cf(s->db, s->write_options, s->cf[CF_META], key, strlen(key), &err);
    if (err) return store_rocks_error(err, "meta delete");
    return 0;
}
