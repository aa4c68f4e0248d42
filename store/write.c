/* store/write.c — group commit: many agent batches become ONE RocksDB write holding their
 * events, each agent's new durable seq and one pending-index log entry, so events and
 * durable seqs never get out of step and a crash never loses index entries. Duplicate
 * batches (seq <= durable) are skipped, which makes re-delivery idempotent. After the
 * write, the group's index terms enter the in-memory slice. */
#include "internal.h"

#include "core/clock.h"
#include "core/failpoint.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- durable seqs: (tenant, agent) -> entry ---- */

static inline uint32_t agent_bucket(uint64_t tenant_hash, uint64_t agent_hash)
{
    uint64_t h = (agent_hash ^ (tenant_hash * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h >> 32);
}

static uint32_t agent_find(const store *s, uint64_t tenant_hash, uint64_t agent_hash)
{
    if (!s->agent_table) return UINT32_MAX;
    uint32_t i = agent_bucket(tenant_hash, agent_hash) & s->agent_table_mask;
    for (;;) {
        uint32_t e = s->agent_table[i];
        if (!e) return UINT32_MAX;
        const agent_entry *a = &s->agents[e - 1];
        if (a->agent_hash == agent_hash && a->tenant_hash == tenant_hash) return e - 1;
        i = (i + 1) & s->agent_table_mask;
    }
}

static void agent_table_put(store *s, uint32_t idx)
{
    const agent_entry *a = &s->agents[idx];
    uint32_t i = agent_bucket(a->tenant_hash, a->agent_hash) & s->agent_table_mask;
    while (s->agent_table[i]) i = (i + 1) & s->agent_table_mask;
    s->agent_table[i] = idx + 1;
}

/* Adds an entry; caller holds agents_mu (or is store_open, before any reader exists). */
static uint32_t agent_add_locked(store *s, uint64_t tenant_hash, uint64_t agent_hash, uint64_t durable_seq)
{
    if (s->agent_count == s->agent_cap) {
        s->agent_cap = s->agent_cap ? s->agent_cap * 2 : 1024;
        s->agents = mamori_xrealloc(s->agents, (size_t)s->agent_cap * sizeof *s->agents);
    }
    uint32_t idx = s->agent_count++;
    s->agents[idx] = (agent_entry){.tenant_hash = tenant_hash, .agent_hash = agent_hash, .durable_seq = durable_seq};
    uint32_t slots = s->agent_table ? s->agent_table_mask + 1 : 0;
    if ((size_t)s->agent_count * 2 > slots) {
        uint32_t n = slots ? slots * 2 : 2048;
        free(s->agent_table);
        s->agent_table = mamori_xcalloc(n, sizeof *s->agent_table);
        s->agent_table_mask = n - 1;
        for (uint32_t i = 0; i < s->agent_count; i++) agent_table_put(s, i);
    } else {
        agent_table_put(s, idx);
    }
    return idx;
}

int store_load_agents(store *s)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_AGENTS]);
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (klen != STORE_AGENT_KEY_BYTES) continue;
        if (k[16] == STORE_AGENT_TAG_ID) {
            /* sorts after the agent's durable seq (tag 0x01), so the entry exists */
            uint32_t i = agent_find(s, mamori_get_be64(k), mamori_get_be64(k + 8));
            if (i != UINT32_MAX && !s->agents[i].id && vlen > 0 && vlen <= 256)
                s->agents[i].id = mamori_xstrndup((const char *)v, vlen);
            continue;
        }
        if (k[16] != STORE_AGENT_TAG_DURABLE_SEQ) continue;
        if (vlen != 8) {
            LOG_WARN("store", "agents: durable seq value of %zu bytes (want 8); skipped", vlen);
            continue;
        }
        agent_add_locked(s, mamori_get_be64(k), mamori_get_be64(k + 8), mamori_get_be64(v));
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err) rc = store_rocks_error(err, "loading agent durable seqs");
    rocksdb_iter_destroy(it);
    return rc;
}

int store_agent_durable_seq(store *s, uint64_t tenant_hash, uint64_t agent_hash, uint64_t *seq)
{
    MAMORI_ASSERT(s && seq);
    pthread_mutex_lock(&s->agents_mu);
    uint32_t i = agent_find(s, tenant_hash, agent_hash);
    *seq = i == UINT32_MAX ? 0 : s->agents[i].durable_seq;
    pthread_mutex_unlock(&s->agents_mu);
    return 0;
}

static void touch_agent(store *s, uint32_t idx)
{
    if (s->touched_count == s->touched_cap) {
        s->touched_cap = s->touched_cap ? s->touched_cap * 2 : 256;
        s->touched_agents = mamori_xrealloc(s->touched_agents, s->touched_cap * sizeof *s->touched_agents);
    }
    s->touched_agents[s->touched_count++] = idx;
}

/* ---- the group commit ---- */

static int pending_key_cmp(const void *a, const void *b)
{
    const pending_event *x = *(const pending_event *const *)a, *y = *(const pending_event *const *)b;
    if (x->tenant_hash != y->tenant_hash) return x->tenant_hash < y->tenant_hash ? -1 : 1;
    if (x->day != y->day) return x->day < y->day ? -1 : 1;
    return store_ref_cmp(&x->ref, &y->ref);
}

/* Events go into the batch in key order: the memtable skiplist then starts each insert from
 * the previous one's position (RocksDB keeps it), instead of searching from the top for the
 * interleaved agents' events (measured ≈ 10 % fewer cycles per group commit). */
static void put_events_sorted(store *s, const term_group *g)
{
    size_t n = g->event_count;
    if (n > s->sorted_cap) {
        s->sorted_cap = n;
        s->sorted = mamori_xrealloc(s->sorted, n * sizeof *s->sorted);
    }
    bool sorted = true;
    for (size_t i = 0; i < n; i++) {
        s->sorted[i] = &g->events[i];
        if (i && sorted && pending_key_cmp(&s->sorted[i - 1], &s->sorted[i]) > 0) sorted = false;
    }
    if (!sorted) qsort(s->sorted, n, sizeof *s->sorted, pending_key_cmp);
    uint8_t key[STORE_EVENT_KEY_BYTES];
    for (size_t i = 0; i < n; i++) {
        const pending_event *pe = s->sorted[i];
        store_event_key_full(key, pe->tenant_hash, &pe->ref);
        rocksdb_writebatch_put_cf(s->wb, s->cf[CF_EVENTS], (const char *)key, sizeof key, pe->ev->json,
                                  pe->ev->json_len);
    }
}

/* Per event of a logged batch: zigzag(index - previous index - 1), zigzag(ts - previous ts). */
static void put_log_event(buf *log, uint32_t index, int64_t *prev_index, int64_t ts, int64_t *prev_ts)
{
    buf_put_varint(log, zigzag_encode((int64_t)index - *prev_index - 1));
    buf_put_varint(log, zigzag_encode(ts - *prev_ts));
    *prev_index = index;
    *prev_ts = ts;
}

int store_write_group(store *s, const store_batch *batches, size_t count, store_write_result *result)
{
    MAMORI_ASSERT(s && result && (batches || count == 0));
    memset(result, 0, sizeof *result);
    if (count == 0) return 0;
    int rc = ix_wait_room(s);
    if (rc) return rc;

    rocksdb_writebatch_clear(s->wb);
    buf_clear(&s->ixlog);
    s->touched_count = 0;
    s->tenant_put_pending = false;
    s->gen++;
    term_group *g = tw_acquire(s);
    uint64_t bytes = 0, events = 0;
    uint32_t written = 0, duplicate = 0;
    for (size_t bi = 0; bi < count; bi++) {
        const store_batch *b = &batches[bi];
        MAMORI_ASSERT(b->tenant && b->agent_id && (b->events || b->event_count == 0));
        MAMORI_DEBUG_ASSERT(b->tenant_hash == event_tenant_hash(b->tenant));
        uint32_t ai = agent_find(s, b->tenant_hash, b->agent_hash);
        if (ai == UINT32_MAX) {
            pthread_mutex_lock(&s->agents_mu);
            ai = agent_add_locked(s, b->tenant_hash, b->agent_hash, 0);
            pthread_mutex_unlock(&s->agents_mu);
        }
        agent_entry *a = &s->agents[ai];
        uint64_t have = a->pending_gen == s->gen ? a->pending_seq : a->durable_seq;
        if (b->seq <= have) {
            duplicate++;
            continue;
        }
        if (a->pending_gen != s->gen) touch_agent(s, ai);
        a->pending_seq = b->seq;
        a->pending_gen = s->gen;
        store_tenant_note(s, b->tenant, b->tenant_hash, s->wb, &bytes);

        if (b->event_count) {
            uint8_t be[16];
            mamori_put_be64(be, b->tenant_hash);
            mamori_put_be64(be + 8, b->agent_hash);
            buf_append(&s->ixlog, be, sizeof be);
            buf_put_varint(&s->ixlog, b->seq);
            buf_put_varint(&s->ixlog, b->event_count);
        }
        int64_t prev_index = -1; /* so that index 0 encodes as delta 0 */
        int64_t prev_ts = 0;
        for (uint32_t i = 0; i < b->event_count; i++) {
            const mamori_event *ev = &b->events[i];
            MAMORI_ASSERT(ev->json && ev->json_len > 0);
            pending_event *pe = tw_add_event(g);
            pe->ref = (store_event_ref){.ts_us = ev->ts_us, .agent_hash = b->agent_hash, .seq = b->seq,
                                        .index = ev->index};
            pe->tenant_hash = b->tenant_hash;
            pe->day = store_day_of_us(ev->ts_us);
            pe->first_term = 0;
            pe->term_count = 0;
            pe->ev = ev;
            bytes += STORE_EVENT_KEY_BYTES + ev->json_len;
            put_log_event(&s->ixlog, ev->index, &prev_index, ev->ts_us, &prev_ts);
        }
        uint8_t akey[STORE_AGENT_KEY_BYTES], aval[8];
        store_agent_key(akey, b->tenant_hash, b->agent_hash);
        mamori_put_be64(aval, b->seq);
        rocksdb_writebatch_put_cf(s->wb, s->cf[CF_AGENTS], (const char *)akey, sizeof akey, (const char *)aval,
                                  sizeof aval);
        bytes += sizeof akey + sizeof aval;
        if (!a->id) {
            /* first batch of this agent (or first since ids were recorded): its id, once */
            size_t idlen = strlen(b->agent_id);
            store_agent_key_tag(akey, b->tenant_hash, b->agent_hash, STORE_AGENT_TAG_ID);
            rocksdb_writebatch_put_cf(s->wb, s->cf[CF_AGENTS], (const char *)akey, sizeof akey, b->agent_id, idlen);
            bytes += sizeof akey + idlen;
            char *id = mamori_xstrdup(b->agent_id);
            pthread_mutex_lock(&s->agents_mu);
            a->id = id;
            pthread_mutex_unlock(&s->agents_mu);
        }
        written++;
        events += b->event_count;
    }
    if (written == 0) {
        tw_discard(s, g);
        result->batches_duplicate = duplicate;
        atomic_fetch_add_explicit(&s->batches_duplicate, duplicate, memory_order_relaxed);
        return 0; /* every batch was already durable */
    }
    /* the term worker extracts index terms while this thread writes */
    tw_start_extract(s, g);
    put_events_sorted(s, g);
    bool has_log = s->ixlog.len > 0;
    uint64_t group_no = s->next_group_no;
    if (has_log) {
        uint8_t lkey[STORE_IXLOG_KEY_BYTES];
        store_ixlog_key(lkey, group_no);
        rocksdb_writebatch_put_cf(s->wb, s->cf[CF_STATE], (const char *)lkey, sizeof lkey, s->ixlog.data,
                                  s->ixlog.len);
        bytes += sizeof lkey + s->ixlog.len;
    }
    char *err = NULL;
    if (MAMORI_UNLIKELY(failpoint("store.write"))) /* a test hook (README): the write fails as RocksDB's would */
        err = mamori_xstrdup("IO error: failpoint store.write");
    else
        rocksdb_write(s->db, s->write_options, s->wb, &err);
    tw_wait_extracted(s, g); /* the events are borrowed: done with them before returning */
    if (err) {
        tw_discard(s, g);
        atomic_fetch_add_explicit(&s->group_commit_errors, 1, memory_order_relaxed);
        return store_rocks_error(err, "group commit");
    }

    pthread_mutex_lock(&s->agents_mu);
    for (size_t i = 0; i < s->touched_count; i++) {
        agent_entry *a = &s->agents[s->touched_agents[i]];
        a->durable_seq = a->pending_seq;
    }
    pthread_mutex_unlock(&s->agents_mu);
    store_tenants_commit(s, s->gen);
    if (has_log) s->next_group_no++;
    tw_commit(s, g, has_log, group_no);

    result->batches_written = written;
    result->batches_duplicate = duplicate;
    result->events_written = events;
    result->bytes_written = bytes;
    atomic_fetch_add_explicit(&s->events_written, events, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->batches_written, written, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->batches_duplicate, duplicate, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->group_commits, 1, memory_order_relaxed);
    return 0;
}

void store_free_writer_state(store *s)
{
    if (s->wb) rocksdb_writebatch_destroy(s->wb);
    s->wb = NULL;
    buf_fini(&s->ixlog);
    free(s->touched_agents);
    free(s->sorted);
    s->sorted = NULL;
    for (uint32_t i = 0; i < s->agent_count; i++) free(s->agents[i].id);
    free(s->agents);
    free(s->agent_table);
    s->touched_agents = NULL;
    s->agents = NULL;
    s->agent_table = NULL;
}
