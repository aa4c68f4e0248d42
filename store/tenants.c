/* store/tenants.c — the tenant registry (meta `tenant/<name>` -> JSON) and retention:
 * every tenant ever written is registered in the group that first writes it, and
 * store_apply_retention drops whole day buckets per tenant with one range delete per
 * column family, so expiry costs O(tenants), not O(events). */
#include "internal.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t tenant_find(const store *s, uint64_t hash)
{
    for (uint32_t i = 0; i < s->tenant_count; i++)
        if (s->tenants[i].hash == hash) return i;
    return UINT32_MAX;
}

uint32_t store_tenant_retention_days(const store *s, const char *tenant)
{
    for (size_t i = 0; i < s->opt.tenant_retention_count; i++)
        if (strcmp(s->overrides[i].tenant, tenant) == 0) return s->overrides[i].days;
    return s->opt.retention_days;
}

uint32_t store_tenant_floor_day(store *s, uint64_t tenant_hash)
{
    pthread_mutex_lock(&s->tenants_mu);
    uint32_t i = tenant_find(s, tenant_hash);
    uint32_t floor = i == UINT32_MAX ? 0 : s->tenants[i].floor_day;
    pthread_mutex_unlock(&s->tenants_mu);
    return floor;
}

/* Caller holds tenants_mu (or is store_open). Takes a copy of name. */
static uint32_t tenant_add_locked(store *s, const char *name, uint64_t hash, uint32_t floor_day, bool persisted)
{
    if (s->tenant_count == s->tenant_cap) {
        s->tenant_cap = s->tenant_cap ? s->tenant_cap * 2 : 16;
        s->tenants = mamori_xrealloc(s->tenants, (size_t)s->tenant_cap * sizeof *s->tenants);
    }
    uint32_t i = s->tenant_count++;
    s->tenants[i] = (tenant_entry){.hash = hash,
                                   .name = mamori_xstrdup(name),
                                   .retention_days = store_tenant_retention_days(s, name),
                                   .floor_day = floor_day,
                                   .persisted = persisted};
    return i;
}

static void tenant_json(buf *out, const tenant_entry *t)
{
    char hex[17];
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) hex[i] = digits[(t->hash >> (60 - 4 * i)) & 15];
    hex[16] = '\0';
    buf_clear(out);
    buf_puts(out, "{\"name\":");
    json_write_string(out, t->name, strlen(t->name));
    buf_printf(out, ",\"hash\":\"%s\",\"retention_days\":%u,\"floor_day\":%u}", hex, t->retention_days, t->floor_day);
}

static size_t tenant_key(buf *out, const char *name)
{
    buf_clear(out);
    buf_puts(out, STORE_TENANT_META_PREFIX);
    buf_puts(out, name);
    return out->len;
}

static void tenant_put(rocksdb_writebatch_t *wb, rocksdb_column_family_handle_t *meta, const tenant_entry *t,
                       uint64_t *bytes)
{
    buf k, v;
    buf_init(&k);
    buf_init(&v);
    tenant_key(&k, t->name);
    tenant_json(&v, t);
    rocksdb_writebatch_put_cf(wb, meta, k.data, k.len, v.data, v.len);
    if (bytes) *bytes += k.len + v.len;
    buf_fini(&k);
    buf_fini(&v);
}

uint32_t store_tenant_note(store *s, const char *tenant, uint64_t tenant_hash, rocksdb_writebatch_t *wb,
                           uint64_t *bytes)
{
    uint32_t i = s->last_tenant;
    if (i >= s->tenant_count || s->tenants[i].hash != tenant_hash) {
        i = tenant_find(s, tenant_hash);
        if (i == UINT32_MAX) {
            MAMORI_ASSERT(strlen(tenant) <= STORE_TENANT_NAME_MAX);
            pthread_mutex_lock(&s->tenants_mu);
            i = tenant_add_locked(s, tenant, tenant_hash, 0, false);
            pthread_mutex_unlock(&s->tenants_mu);
        }
        s->last_tenant = i;
    }
    tenant_entry *t = &s->tenants[i];
    if (!t->persisted && t->pending_gen != s->gen) {
        /* only the writer sets these two fields; retention may change floor_day meanwhile */
        t->pending_gen = s->gen;
        s->tenant_put_pending = true;
        pthread_mutex_lock(&s->tenants_mu);
        tenant_put(wb, s->cf[CF_META], t, bytes);
        pthread_mutex_unlock(&s->tenants_mu);
    }
    return i;
}

void store_tenants_commit(store *s, uint64_t gen)
{
    if (!s->tenant_put_pending) return;
    s->tenant_put_pending = false;
    pthread_mutex_lock(&s->tenants_mu);
    for (uint32_t i = 0; i < s->tenant_count; i++)
        if (s->tenants[i].pending_gen == gen) s->tenants[i].persisted = true;
    pthread_mutex_unlock(&s->tenants_mu);
}

/* Reads one registry entry; -EBADMSG when it is not what tenant_json writes. */
static int parse_tenant(json_parser *p, arena *a, const char *text, size_t len, char *name, size_t name_cap,
                        uint64_t *hash, uint32_t *floor_day)
{
    json_value root;
    json_error jerr;
    if (json_parse(p, a, text, len, &root, &jerr) || root.type != JSON_OBJECT) return -EBADMSG;
    const json_value *n = json_object_get(&root, "name", 4), *h = json_object_get(&root, "hash", 4);
    const json_value *f = json_object_get(&root, "floor_day", 9);
    if (!json_is_string(n) || !json_is_string(h) || h->len != 16 || n->len >= name_cap) return -EBADMSG;
    memcpy(name, n->str, n->len);
    name[n->len] = '\0';
    uint64_t v = 0;
    for (uint32_t i = 0; i < 16; i++) {
        char c = h->str[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -EBADMSG;
        v = v << 4 | (uint64_t)d;
    }
    *hash = v;
    *floor_day = 0;
    if (f && f->type == JSON_NUMBER && (f->flags & JSON_FLAG_INT) && f->num.i >= 0 && f->num.i <= UINT32_MAX)
        *floor_day = (uint32_t)f->num.i;
    return 0;
}

int store_load_tenants(store *s)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_META]);
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 4096);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    size_t plen = sizeof STORE_TENANT_META_PREFIX - 1;
    char name[STORE_TENANT_NAME_MAX + 1];
    for (rocksdb_iter_seek(it, STORE_TENANT_META_PREFIX, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, STORE_TENANT_META_PREFIX, plen) != 0) break;
        const char *v = rocksdb_iter_value(it, &vlen);
        uint64_t hash;
        uint32_t floor_day;
        arena_reset(&a);
        if (parse_tenant(p, &a, v, vlen, name, sizeof name, &hash, &floor_day)) {
            LOG_WARN("store", "meta %.*s: unreadable tenant registry entry; skipped", (int)MAMORI_MIN(klen, 300), k);
            continue;
        }
        uint32_t i = tenant_add_locked(s, name, hash, floor_day, true);
        /* keep the recorded retention in step with the configuration */
        tenant_put(wb, s->cf[CF_META], &s->tenants[i], NULL);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    int rc = err ? store_rocks_error(err, "loading tenant registry") : 0;
    if (rc == 0 && rocksdb_writebatch_count(wb) > 0) {
        rocksdb_write(s->db, s->write_options, wb, &err);
        if (err) rc = store_rocks_error(err, "updating tenant registry");
    }
    rocksdb_writebatch_destroy(wb);
    arena_fini(&a);
    json_parser_destroy(p);
    rocksdb_iter_destroy(it);
    return rc;
}

/* True when the column family holds a key in [begin, end). */
static int range_has_data(store *s, enum store_cf cf, const uint8_t *begin, const uint8_t *end, size_t len,
                          bool *has)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[cf]);
    rocksdb_iter_seek(it, (const char *)begin, len);
    *has = false;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        size_t n = MAMORI_MIN(klen, len);
        int c = memcmp(k, end, n);
        *has = c < 0 || (c == 0 && klen < len);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? store_rocks_error(err, "retention probe") : 0;
}

int store_apply_retention(store *s, int64_t now_us, uint32_t *ranges_deleted)
{
    MAMORI_ASSERT(s && ranges_deleted);
    *ranges_deleted = 0;
    pthread_mutex_lock(&s->tenants_mu);
    uint32_t n = s->tenant_count;
    tenant_entry *snap = mamori_xmalloc((n ? n : 1) * sizeof *snap);
    for (uint32_t i = 0; i < n; i++) {
        snap[i] = s->tenants[i];
        snap[i].name = mamori_xstrdup(s->tenants[i].name);
    }
    pthread_mutex_unlock(&s->tenants_mu);

    uint32_t today = store_day_of_us(now_us);
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        tenant_entry *t = &snap[i];
        uint32_t days = store_tenant_retention_days(s, t->name);
        if (days == 0 || today <= days) continue; /* 0: keep forever */
        uint32_t cutoff = today - days;
        uint8_t begin[12], end[12];
        mamori_put_be64(begin, t->hash);
        mamori_put_be32(begin + 8, 0);
        mamori_put_be64(end, t->hash);
        mamori_put_be32(end + 8, cutoff);
        bool ev_has = false, ix_has = false;
        if ((rc = range_has_data(s, CF_EVENTS, begin, end, sizeof begin, &ev_has))) break;
        if ((rc = range_has_data(s, CF_INDEX, begin, end, sizeof begin, &ix_has))) break;
        t->retention_days = days;
        t->floor_day = MAMORI_MAX(t->floor_day, cutoff);
        pthread_mutex_lock(&s->tenants_mu);
        uint32_t live = tenant_find(s, t->hash);
        if (live != UINT32_MAX) s->tenants[live].floor_day = MAMORI_MAX(s->tenants[live].floor_day, cutoff);
        pthread_mutex_unlock(&s->tenants_mu);
        if (!ev_has && !ix_has) continue;
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        rocksdb_writebatch_delete_range_cf(wb, s->cf[CF_EVENTS], (const char *)begin, sizeof begin,
                                           (const char *)end, sizeof end);
        rocksdb_writebatch_delete_range_cf(wb, s->cf[CF_INDEX], (const char *)begin, sizeof begin, (const char *)end,
                                           sizeof end);
        tenant_put(wb, s->cf[CF_META], t, NULL);
        char *err = NULL;
        rocksdb_write(s->db, s->write_options, wb, &err);
        rocksdb_writebatch_destroy(wb);
        if (err) {
            rc = store_rocks_error(err, "retention range delete");
            break;
        }
        /* a hint, not a wait: compaction reclaims the space in the background */
        rocksdb_suggest_compact_range_cf(s->db, s->cf[CF_EVENTS], (const char *)begin, sizeof begin,
                                         (const char *)end, sizeof end, &err);
        if (err) (void)store_rocks_error(err, "retention compaction hint (events)");
        err = NULL;
        rocksdb_suggest_compact_range_cf(s->db, s->cf[CF_INDEX], (const char *)begin, sizeof begin,
                                         (const char *)end, sizeof end, &err);
        if (err) (void)store_rocks_error(err, "retention compaction hint (index)");
        (*ranges_deleted)++;
        atomic_fetch_add_explicit(&s->retention_ranges_deleted, 1, memory_order_relaxed);
        LOG_INFO("store", "retention tenant=%s days=%u removed day buckets before %u", t->name, days, cutoff);
    }
    for (uint32_t i = 0; i < n; i++) free(snap[i].name);
    free(snap);
    return rc;
}

void store_free_registries(store *s)
{
    for (uint32_t i = 0; i < s->tenant_count; i++) free(s->tenants[i].name);
    free(s->tenants);
    s->tenants = NULL;
    s->tenant_count = s->tenant_cap = 0;
}
