/* store/alerts_list.c — listing alerts newest first with filters and a cursor: walk one
 * index (the most selective one the query names), check the other filters on each entry's
 * summary, and read only the records that make the page. A bound on the entries examined
 * keeps a query with a rare combination of filters from walking a tenant's whole history;
 * it then answers with a cursor at the last entry examined. */
#include "internal.h"

#include <errno.h>
#include <string.h>

#include "alerts_codec.h"

typedef struct walk {
    char kind;
    uint64_t term;
    uint8_t prefix[ALERT_INDEX_PREFIX_MAX];
    size_t prefix_len;
} walk;

static void choose_index(const store_alert_query *q, walk *w)
{
    if (q->rule_hash) w->kind = ALERT_KIND_RULE, w->term = q->rule_hash;
    else if (q->host_hash) w->kind = ALERT_KIND_HOST, w->term = q->host_hash;
    else if (q->status >= 0) w->kind = ALERT_KIND_STATUS, w->term = (uint64_t)q->status;
    else if (q->level >= 0) w->kind = ALERT_KIND_LEVEL, w->term = (uint64_t)q->level;
    else w->kind = ALERT_KIND_TIME, w->term = 0;
    w->prefix_len = alert_index_prefix(w->prefix, w->kind, q->tenant_hash, w->term);
}

static bool summary_matches(const store_alert_query *q, const alert_summary *s)
{
    if (q->rule_hash && s->rule_hash != q->rule_hash) return false;
    if (q->host_hash && s->host_id_hash != q->host_hash && s->host_name_hash != q->host_hash) return false;
    if (q->status >= 0 && s->status != (uint8_t)q->status) return false;
    if (q->level >= 0 && s->level != (uint8_t)q->level) return false;
    return true;
}

static int emit(store *s, const store_alert_query *q, const uint8_t *id, store_alert_fn fn, void *ctx, buf *storage,
                bool *stop)
{
    store_alert a;
    int rc = store_alert_get(s, q->tenant_hash, id, &a, storage);
    if (rc == -ENOENT) return 0; /* an index entry without its record: only after damage */
    if (rc) return rc;
    *stop = fn(ctx, &a) != 0;
    return 0;
}

int store_alerts_list(store *s, const store_alert_query *q, store_alert_fn fn, void *ctx, store_alert_page *page)
{
    MAMORI_ASSERT(s && q && fn && page && q->limit >= 1);
    memset(page, 0, sizeof *page);
    if (q->from_us >= q->to_us) return 0;
    walk w;
    choose_index(q, &w);
    uint8_t seek[STORE_ALERT_INDEX_KEY_MAX];
    size_t seek_len;
    if (q->after) {
        seek_len = store_alert_index_key(seek, w.kind, q->tenant_hash, w.term, q->after_ts_us, q->after_id);
    } else {
        /* the newest entry with ts < to_us */
        memcpy(seek, w.prefix, w.prefix_len);
        mamori_put_be64(seek + w.prefix_len, alert_inv_ts(q->to_us - 1));
        seek_len = w.prefix_len + 8;
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_ALERTS]);
    buf storage;
    buf_init(&storage);
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)seek, seek_len); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != w.prefix_len + 8 + STORE_ALERT_ID_BYTES || memcmp(k, w.prefix, w.prefix_len) != 0) break;
        const uint8_t *id = k + w.prefix_len + 8;
        int64_t ts = alert_ts_from_inv(mamori_get_be64(k + w.prefix_len));
        if (q->after && klen == seek_len && memcmp(k, seek, klen) == 0) continue; /* the cursor's own entry */
        if (ts < q->from_us) break;
        if (ts >= q->to_us) continue; /* a cursor from a wider range */
        if (q->max_examined && page->examined == q->max_examined) {
            /* bounded: the caller continues after the last entry handled */
            page->more = true;
            break;
        }
        alert_summary sum;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        bool match = alert_summary_decode(v, vlen, &sum) == 0 && summary_matches(q, &sum);
        if (match && page->returned == q->limit) {
            page->more = true; /* a further match: the page ends before it */
            break;
        }
        page->examined++;
        page->next_ts_us = ts;
        memcpy(page->next_id, id, STORE_ALERT_ID_BYTES);
        if (!match) continue;
        bool stop = false;
        if ((rc = emit(s, q, id, fn, ctx, &storage, &stop))) break;
        page->returned++;
        if (stop) {
            page->more = true;
            break;
        }
    }
    if (rc == 0) {
        char *err = NULL;
        rocksdb_iter_get_error(it, &err);
        if (err) rc = store_rocks_error(err, "listing alerts");
    }
    rocksdb_iter_destroy(it);
    buf_fini(&storage);
    return rc;
}
