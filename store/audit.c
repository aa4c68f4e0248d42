/* store/audit.c — the audit log: append-only entries in the meta column family under
 * "audit/" + tenant + newest-first time + sequence, each one JSON object. Entries of action
 * creation and transitions go into the same RocksDB write as the change (store_audit_put);
 * API calls append their own. Nothing updates or deletes an entry. */
#include "internal.h"

#include "core/clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_PREFIX "audit/"
#define AUDIT_PREFIX_LEN 6u
#define AUDIT_KEY_BYTES (AUDIT_PREFIX_LEN + 24u)

static _Atomic uint64_t audit_seq;

static void audit_key(uint8_t out[AUDIT_KEY_BYTES], uint64_t tenant_hash, int64_t at_us, uint64_t seq)
{
    memcpy(out, AUDIT_PREFIX, AUDIT_PREFIX_LEN);
    mamori_put_be64(out + AUDIT_PREFIX_LEN, tenant_hash);
    mamori_put_be64(out + AUDIT_PREFIX_LEN + 8, ~((uint64_t)at_us ^ (1ULL << 63))); /* newest first */
    mamori_put_be64(out + AUDIT_PREFIX_LEN + 16, ~seq);
}

static void str_or_null(buf *b, const char *s)
{
    if (s) json_write_string(b, s, strlen(s));
    else buf_puts(b, "null");
}

void store_audit_put(store *s, rocksdb_writebatch_t *wb, const store_audit *a)
{
    uint64_t seq = atomic_fetch_add(&audit_seq, 1) + 1;
    uint8_t key[AUDIT_KEY_BYTES];
    audit_key(key, a->tenant_hash, a->at_us, seq);
    buf v;
    buf_init(&v);
    char at[40];
    clock_format_rfc3339(a->at_us, at);
    buf_printf(&v, "{\"at\":\"%s\",\"tenant\":", at);
    str_or_null(&v, a->tenant);
    buf_puts(&v, ",\"actor\":");
    str_or_null(&v, a->actor);
    buf_puts(&v, ",\"what\":");
    str_or_null(&v, a->what);
    buf_puts(&v, ",\"target\":");
    str_or_null(&v, a->target);
    buf_puts(&v, ",\"detail\":");
    if (a->detail && a->detail_len) buf_append(&v, a->detail, a->detail_len);
    else buf_puts(&v, "null");
    buf_puts(&v, ",\"result\":");
    str_or_null(&v, a->result);
    buf_putc(&v, '}');
    rocksdb_writebatch_put_cf(wb, s->cf[CF_META], (const char *)key, sizeof key, v.data, v.len);
    buf_fini(&v);
}

int store_audit_append(store *s, const store_audit *a)
{
    MAMORI_ASSERT(s && a);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    store_audit_put(s, wb, a);
    char *err = NULL;
    rocksdb_write(s->db, s->write_options, wb, &err);
    rocksdb_writebatch_destroy(wb);
    return err ? store_rocks_error(err, "audit append") : 0;
}

int store_audit_list(store *s, uint64_t tenant_hash, int64_t from_us, int64_t to_us, const store_audit_pos *after,
                     store_audit_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && fn);
    uint8_t prefix[AUDIT_PREFIX_LEN + 8], seek[AUDIT_KEY_BYTES];
    memcpy(prefix, AUDIT_PREFIX, AUDIT_PREFIX_LEN);
    mamori_put_be64(prefix + AUDIT_PREFIX_LEN, tenant_hash);
    size_t seek_len;
    if (after) {
        audit_key(seek, tenant_hash, after->at_us, after->seq);
        seek_len = sizeof seek;
    } else {
        /* newest first: start at to_us (exclusive), i.e. at the first key with at < to_us */
        audit_key(seek, tenant_hash, to_us == INT64_MIN ? to_us : to_us - 1, UINT64_MAX);
        seek_len = sizeof seek;
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_META]);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)seek, seek_len); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != AUDIT_KEY_BYTES || memcmp(k, prefix, sizeof prefix) != 0) break;
        store_audit_pos pos = {(int64_t)(~mamori_get_be64(k + AUDIT_PREFIX_LEN + 8) ^ (1ULL << 63)),
                               ~mamori_get_be64(k + AUDIT_PREFIX_LEN + 16)};
        if (after && pos.at_us == after->at_us && pos.seq == after->seq) continue;
        if (pos.at_us >= to_us) continue;
        if (pos.at_us < from_us) break;
        const char *v = rocksdb_iter_value(it, &vlen);
        if (fn(ctx, v, vlen, &pos)) {
            rc = 1;
            break;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? store_rocks_error(err, "audit listing") : rc;
}
