/* store/recover.c — replay of the pending-index log at store_open. Each group commit
 * logged (tenant, agent, seq, index and ts of each event) in the same write as the events;
 * a slice write deletes the entries it covers in the same write as its postings. So the
 * entries still present are exactly the groups whose postings never reached disk: re-read
 * those events, extract their indexed values from the stored JSON and write the slices.
 * Nothing indexed is lost on kill -9, and nothing is indexed twice. */
#include "internal.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct log_event {
    uint64_t tenant_hash;
    store_event_ref ref;
    uint8_t key[STORE_EVENT_KEY_BYTES];
} log_event;

typedef struct recover_ctx {
    ix_slice *sl;
    uint32_t event_no;
    uint64_t tenant_hash;
    uint32_t day;
    buf scratch;
} recover_ctx;

static void add_recovered_term(void *arg, enum store_index_field f, const char *value, size_t len)
{
    recover_ctx *r = arg;
    if (len == 0) return;
    ix_term t;
    ix_term_make(&r->scratch, value, len, &t);
    uint64_t h = ix_term_hash(r->tenant_hash, r->day, (uint8_t)f, &t);
    ix_slice_add_term(r->sl, r->event_no, r->tenant_hash, r->day, (uint8_t)f, &t, h);
}

/* Decodes one log entry into events[]; -EBADMSG when it is damaged. */
static int parse_entry(const uint8_t *p, const uint8_t *end, log_event **events, size_t *n, size_t *cap)
{
    *n = 0;
    while (p < end) {
        if (end - p < 16) return -EBADMSG;
        uint64_t tenant = mamori_get_be64(p), agent = mamori_get_be64(p + 8), seq, count;
        p += 16;
        if (varint_get(&p, end, &seq) || varint_get(&p, end, &count) || count > UINT32_MAX) return -EBADMSG;
        int64_t prev_index = -1, prev_ts = 0;
        for (uint64_t i = 0; i < count; i++) {
            uint64_t di, dt;
            if (varint_get(&p, end, &di) || varint_get(&p, end, &dt)) return -EBADMSG;
            int64_t index = prev_index + 1 + zigzag_decode(di);
            if (index < 0 || index > (int64_t)UINT32_MAX) return -EBADMSG;
            int64_t ts = (int64_t)((uint64_t)prev_ts + (uint64_t)zigzag_decode(dt));
            prev_index = index;
            prev_ts = ts;
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 1024;
                *events = mamori_xrealloc(*events, *cap * sizeof **events);
            }
            log_event *e = &(*events)[(*n)++];
            e->tenant_hash = tenant;
            e->ref = (store_event_ref){.ts_us = ts, .agent_hash = agent, .seq = seq, .index = (uint32_t)index};
            store_event_key_full(e->key, tenant, &e->ref);
        }
    }
    return 0;
}

typedef struct recovery {
    store *s;
    json_parser *jp;
    arena a;
    recover_ctx r;
    log_event *events;
    size_t n, cap, arrays_cap;
    const char **keys;
    size_t *key_lens, *value_lens;
    char **values, **errs;
    rocksdb_column_family_handle_t **cfs;
    uint64_t groups, recovered, missing, damaged;
} recovery;

/* Re-reads the events of one log entry and adds their indexed values to sl. */
static int recover_group(recovery *rv, ix_slice *sl, uint64_t group_no, const uint8_t *v, size_t vlen)
{
    store *s = rv->s;
    rv->groups++;
    if (parse_entry(v, v + vlen, &rv->events, &rv->n, &rv->cap)) {
        rv->damaged++;
        LOG_ERROR("store", "pending-index log group %llu: damaged entry; its events stay stored but unindexed",
                  (unsigned long long)group_no);
        rv->n = 0;
    }
    size_t n = rv->n;
    if (n > rv->arrays_cap) {
        rv->arrays_cap = n;
        rv->keys = mamori_xrealloc(rv->keys, n * sizeof *rv->keys);
        rv->key_lens = mamori_xrealloc(rv->key_lens, n * sizeof *rv->key_lens);
        rv->value_lens = mamori_xrealloc(rv->value_lens, n * sizeof *rv->value_lens);
        rv->values = mamori_xrealloc(rv->values, n * sizeof *rv->values);
        rv->errs = mamori_xrealloc(rv->errs, n * sizeof *rv->errs);
        rv->cfs = mamori_xrealloc(rv->cfs, n * sizeof *rv->cfs);
    }
    for (size_t i = 0; i < n; i++) {
        rv->keys[i] = (const char *)rv->events[i].key;
        rv->key_lens[i] = STORE_EVENT_KEY_BYTES;
        rv->cfs[i] = s->cf[CF_EVENTS];
    }
    if (n)
        rocksdb_multi_get_cf(s->db, s->read_options, (const rocksdb_column_family_handle_t *const *)rv->cfs, n,
                             rv->keys, rv->key_lens, rv->values, rv->value_lens, rv->errs);
    int rc = 0;
    rv->r.sl = sl;
    for (size_t i = 0; i < n; i++) {
        if (rv->errs[i]) {
            if (rc == 0) rc = store_rocks_error(rv->errs[i], "recovery event read");
            else rocksdb_free(rv->errs[i]);
            rocksdb_free(rv->values[i]);
            continue;
        }
        if (!rv->values[i]) {
            rv->missing++; /* removed by retention before its slice was written */
            continue;
        }
        arena_reset(&rv->a);
        json_value root;
        json_error jerr;
        rv->r.event_no = ix_slice_add_event(sl, &rv->events[i].ref);
        rv->r.tenant_hash = rv->events[i].tenant_hash;
        rv->r.day = store_day_of_us(rv->events[i].ref.ts_us);
        if (json_parse(rv->jp, &rv->a, rv->values[i], rv->value_lens[i], &root, &jerr) == 0)
            ix_extract_json(&root, add_recovered_term, &rv->r);
        else
            LOG_WARN("store", "recovery: stored event is not JSON at offset %zu: %s", jerr.offset, jerr.msg);
        rocksdb_free(rv->values[i]);
        rv->recovered++;
    }
    if (rc == 0) ix_slice_note_group(sl, group_no);
    return rc;
}

int store_recover_index(store *s)
{
    recovery rv = {.s = s, .jp = json_parser_create()};
    arena_init(&rv.a, 64 * 1024);
    buf_init(&rv.r.scratch);
    int rc = 0;
    char *err = NULL;

    /* A slice that was being written when the process died is rebuilt as it was: same
     * groups, same id, hence the same keys. */
    uint64_t m_id = 0, m_first = 0, m_last = 0;
    size_t mlen = 0;
    char *m = rocksdb_get_cf(s->db, s->read_options, s->cf[CF_STATE], STORE_SLICE_OPEN_KEY,
                             sizeof STORE_SLICE_OPEN_KEY - 1, &mlen, &err);
    if (err) rc = store_rocks_error(err, "reading slice marker");
    bool has_marker = m && mlen == 24;
    if (has_marker) {
        m_id = mamori_get_be64((const uint8_t *)m);
        m_first = mamori_get_be64((const uint8_t *)m + 8);
        m_last = mamori_get_be64((const uint8_t *)m + 16);
    }
    rocksdb_free(m);
    ix_slice *marked = has_marker ? ix_slice_create() : NULL;
    ix_slice *sl = ix_slice_create();

    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_STATE]);
    for (rocksdb_iter_seek(it, STORE_IXLOG_PREFIX, STORE_IXLOG_PREFIX_LEN); rc == 0 && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen != STORE_IXLOG_KEY_BYTES || memcmp(k, STORE_IXLOG_PREFIX, STORE_IXLOG_PREFIX_LEN) != 0) break;
        uint64_t group_no = mamori_get_be64(k + STORE_IXLOG_PREFIX_LEN);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (marked && group_no >= m_first && group_no <= m_last) {
            rc = recover_group(&rv, marked, group_no, v, vlen);
            continue;
        }
        if (marked && group_no > m_last) { /* finish the marked slice first, in log order */
            if ((rc = ix_write_slice_as(s, marked, m_id))) break;
            ix_slice_destroy(marked);
            marked = NULL;
        }
        if ((rc = recover_group(&rv, sl, group_no, v, vlen))) break;
        if (ix_slice_bytes(sl) >= s->opt.index_slice_max_bytes) {
            if ((rc = ix_write_slice(s, sl))) break;
            ix_slice_destroy(sl);
            sl = ix_slice_create();
        }
    }
    rocksdb_iter_get_error(it, &err);
    if (err && rc == 0) rc = store_rocks_error(err, "reading the pending-index log");
    else if (err) rocksdb_free(err);
    if (rc == 0 && marked) rc = ix_write_slice_as(s, marked, m_id);
    if (rc == 0 && !ix_slice_empty(sl)) rc = ix_write_slice(s, sl);
    if (rv.groups || has_marker)
        LOG_INFO("store",
                 "pending-index log replayed: groups=%llu events=%llu missing=%llu damaged=%llu unfinished_slice=%s rc=%d",
                 (unsigned long long)rv.groups, (unsigned long long)rv.recovered, (unsigned long long)rv.missing,
                 (unsigned long long)rv.damaged, has_marker ? "yes" : "no", rc);
    atomic_fetch_add_explicit(&s->recovered_events, rv.recovered, memory_order_relaxed);
    ix_slice_destroy(marked);
    ix_slice_destroy(sl);
    buf_fini(&rv.r.scratch);
    free(rv.events);
    free(rv.keys);
    free(rv.key_lens);
    free(rv.value_lens);
    free(rv.values);
    free(rv.errs);
    free(rv.cfs);
    arena_fini(&rv.a);
    json_parser_destroy(rv.jp);
    rocksdb_iter_destroy(it);
    return rc;
}
