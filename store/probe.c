/* store/probe.c — index reads that never merge lists: how many refs a term holds in a time
 * range, read from posting headers alone (what the search planner needs to pick the most
 * selective predicate), and which refs of a given sorted set carry a term (an intersection
 * that decodes only the postings overlapping the set in time and in agents, and stops
 * decoding a posting once it is past the set's last ref in it). Both see the same postings
 * as store_index_lookup: the in-memory slices first, then RocksDB. */
#include "internal.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef int (*posting_fn)(void *ctx, int64_t min_ts, const uint8_t *value, size_t len);

typedef struct probe {
    store *s;
    ix_query q;
    uint8_t term[IX_TERM_MAX];
    size_t term_len;
    uint8_t seek[IX_KEY_MAX];
    size_t seek_len;
    buf scratch;
} probe;

/* 1 when nothing can match (empty range after retention), else 0. */
static int probe_init(probe *P, store *s, const char *tenant, enum store_index_field field, const char *value,
                      size_t value_len, bool prefix, int64_t from_us, int64_t to_us)
{
    MAMORI_ASSERT(s && tenant && (value || value_len == 0));
    MAMORI_ASSERT((int)field > 0 && field < STORE_IX_FIELD_COUNT_PLUS_ONE);
    memset(P, 0, sizeof *P);
    P->s = s;
    buf_init(&P->scratch);
    uint64_t tenant_hash = event_tenant_hash(tenant);
    if (from_us < 0) from_us = 0;
    int64_t floor_us = store_day_start_us(store_tenant_floor_day(s, tenant_hash));
    if (from_us < floor_us) from_us = floor_us;
    if (from_us >= to_us || (!prefix && value_len == 0)) return 1;
    P->q = (ix_query){.tenant_hash = tenant_hash, .field = (uint8_t)field, .prefix = prefix, .from_us = from_us,
                      .to_us = to_us};
    ix_term term;
    ix_term_make(&P->scratch, value, value_len, &term);
    if (!prefix) {
        P->q.term = term;
        P->term_len = ix_term_encode(P->term, &term);
    } else {
        P->q.pfx = term.value;
        P->q.pfx_len = term.len;
        ix_key_prefix(P->seek, tenant_hash, 0, (uint8_t)field);
        P->seek_len = IX_KEY_PREFIX_BYTES + ix_escape(P->seek + IX_KEY_PREFIX_BYTES, term.value, term.len);
        if (term.truncated) {
            P->q.pfx_truncated_only = true;
            P->seek[P->seek_len++] = 0x00;
            P->seek[P->seek_len++] = 0x02;
        }
    }
    return 0;
}

static void probe_fini(probe *P) { buf_fini(&P->scratch); }

/* Every ref of the in-memory slices matching the probe's term, in no particular order. */
static void probe_memory(probe *P, ref_vec *out)
{
    store *s = P->s;
    tw_sync(s); /* every group committed before this call is in the slice */
    pthread_rwlock_rdlock(&s->ix_rw);
    ix_slice_collect(s->active, &P->q, out);
    for (const ix_slice *sl = s->closed_head; sl; sl = sl->next) ix_slice_collect(sl, &P->q, out);
    pthread_rwlock_unlock(&s->ix_rw);
}

/* Calls fn for every stored posting of the term in days [day_first, day_last] (days without
 * index data skipped with one seek). fn returns non-zero to stop (a negative value is
 * returned as the error). */
static int probe_stored(probe *P, uint32_t day_first, uint32_t day_last, posting_fn fn, void *ctx)
{
    store *s = P->s;
    rocksdb_readoptions_t *ro_total = rocksdb_readoptions_create();
    rocksdb_readoptions_set_total_order_seek(ro_total, 1);
    rocksdb_readoptions_t *ro_term = NULL;
    rocksdb_iterator_t *day_it = rocksdb_create_iterator_cf(s->db, ro_total, s->cf[CF_INDEX]);
    rocksdb_iterator_t *it;
    if (P->q.prefix) {
        it = rocksdb_create_iterator_cf(s->db, ro_total, s->cf[CF_INDEX]);
    } else {
        ro_term = rocksdb_readoptions_create();
        rocksdb_readoptions_set_prefix_same_as_start(ro_term, 1);
        it = rocksdb_create_iterator_cf(s->db, ro_term, s->cf[CF_INDEX]);
    }
    int rc = 0;
    uint8_t key[IX_KEY_MAX];
    size_t want = IX_KEY_PREFIX_BYTES + P->term_len; /* exact mode: key bytes before the suffix */
    for (uint32_t day = day_first; day <= day_last && rc == 0;) {
        uint8_t k0[12];
        mamori_put_be64(k0, P->q.tenant_hash);
        mamori_put_be32(k0 + 8, day);
        rocksdb_iter_seek(day_it, (const char *)k0, sizeof k0);
        if (!rocksdb_iter_valid(day_it)) break;
        size_t dlen;
        const uint8_t *dk = (const uint8_t *)rocksdb_iter_key(day_it, &dlen);
        if (dlen < 12 || mamori_get_be64(dk) != P->q.tenant_hash) break;
        day = mamori_get_be32(dk + 8);
        if (day > day_last) break;
        const uint8_t *match;
        size_t match_len;
        if (P->q.prefix) {
            mamori_put_be32(P->seek + 8, day);
            match = P->seek;
            match_len = P->seek_len;
        } else {
            ix_key_prefix(key, P->q.tenant_hash, day, P->q.field);
            memcpy(key + IX_KEY_PREFIX_BYTES, P->term, P->term_len);
            memset(key + want, 0, IX_KEY_SUFFIX_BYTES);
            match = key;
            match_len = want;
        }
        rocksdb_iter_seek(it, (const char *)match, P->q.prefix ? match_len : want + IX_KEY_SUFFIX_BYTES);
        for (; rocksdb_iter_valid(it) && rc == 0; rocksdb_iter_next(it)) {
            size_t klen, vlen;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
            if (klen < match_len + IX_KEY_SUFFIX_BYTES || memcmp(k, match, match_len) != 0) break;
            if (!P->q.prefix && klen != want + IX_KEY_SUFFIX_BYTES) break;
            const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
            rc = fn(ctx, (int64_t)mamori_get_be64(k + klen - IX_KEY_SUFFIX_BYTES), v, vlen);
        }
        if (day == UINT32_MAX) break;
        day++;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (!err) rocksdb_iter_get_error(day_it, &err);
    if (err) {
        int e = store_rocks_error(err, "index probe");
        if (rc >= 0) rc = e;
    }
    rocksdb_iter_destroy(it);
    rocksdb_iter_destroy(day_it);
    if (ro_term) rocksdb_readoptions_destroy(ro_term);
    rocksdb_readoptions_destroy(ro_total);
    return rc < 0 ? rc : 0;
}

/* ---- estimate ---- */

typedef struct estimate_ctx {
    int64_t from_us, to_us;
    uint64_t count, cap;
} estimate_ctx;

static int estimate_posting(void *arg, int64_t min_ts, const uint8_t *value, size_t len)
{
    estimate_ctx *e = arg;
    ix_posting_info h;
    if (ix_posting_header(value, len, min_ts, &h)) return -EBADMSG;
    if (h.max_ts < e->from_us || min_ts >= e->to_us) return 0;
    e->count += h.count;
    return e->count > e->cap;
}

int store_index_estimate(store *s, const char *tenant, enum store_index_field field, const char *value,
                         size_t value_len, bool prefix, int64_t from_us, int64_t to_us, uint64_t cap,
                         uint64_t *count)
{
    *count = 0;
    probe P;
    if (probe_init(&P, s, tenant, field, value, value_len, prefix, from_us, to_us)) {
        probe_fini(&P);
        return 0;
    }
    ref_vec mem = {0};
    probe_memory(&P, &mem);
    estimate_ctx e = {.from_us = P.q.from_us, .to_us = P.q.to_us, .count = mem.n, .cap = cap};
    ref_vec_fini(&mem);
    int rc = 0;
    if (e.count <= cap)
        rc = probe_stored(&P, store_day_of_us(P.q.from_us), store_day_of_us(P.q.to_us - 1), estimate_posting, &e);
    probe_fini(&P);
    if (rc == -EBADMSG)
        LOG_RATELIMITED(LOG_LEVEL_ERROR, "store", 1, "index estimate field=%s: corrupt posting list",
                        store_index_field_name(field));
    *count = e.count;
    return rc;
}

/* ---- marking a set ---- */

#define MARK_FEW_REFS 8u      /* this few set refs in a posting's range: compare their agents directly */
#define MARK_AGENTS_MAX 1024u /* distinct agents of the set kept for the agent test */

typedef struct mark_ctx {
    const store_event_ref *set;
    size_t n;
    bool *hit;
    int64_t from_us, to_us;
    uint64_t *agents; /* sorted distinct agents of the set, NULL when too many */
    size_t agent_count;
} mark_ctx;

/* First i in [0, n) with set[i].ts_us >= ts (n when none). */
static size_t lower_ts(const store_event_ref *set, size_t n, int64_t ts)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set[mid].ts_us < ts) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether the posting's agent table holds an agent of set[lo, hi). */
static bool agents_overlap(const mark_ctx *m, const ix_posting_info *h, size_t lo, size_t hi)
{
    if (hi - lo <= MARK_FEW_REFS) {
        for (size_t i = lo; i < hi; i++)
            for (uint32_t k = 0; k < h->agent_count; k++)
                if (mamori_get_be64(h->agents + (size_t)k * 8) == m->set[i].agent_hash) return true;
        return false;
    }
    if (!m->agents) return true;
    for (uint32_t k = 0; k < h->agent_count; k++) {
        uint64_t a = mamori_get_be64(h->agents + (size_t)k * 8);
        if (bsearch(&a, m->agents, m->agent_count, sizeof a, u64_cmp)) return true;
    }
    return false;
}

/* store_ref_cmp, inlined for the decode loop */
static inline int ref_cmp_inline(const store_event_ref *a, const store_event_ref *b)
{
    if (a->ts_us != b->ts_us) return a->ts_us < b->ts_us ? -1 : 1;
    if (a->agent_hash != b->agent_hash) return a->agent_hash < b->agent_hash ? -1 : 1;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    if (a->index != b->index) return a->index < b->index ? -1 : 1;
    return 0;
}

static int mark_posting(void *arg, int64_t min_ts, const uint8_t *value, size_t len)
{
    mark_ctx *m = arg;
    ix_posting_info h;
    if (ix_posting_header(value, len, min_ts, &h)) return -EBADMSG;
    int64_t lo_ts = MAMORI_MAX(min_ts, m->from_us), hi_ts = MAMORI_MIN(h.max_ts, m->to_us - 1);
    if (lo_ts > hi_ts) return 0;
    size_t lo = lower_ts(m->set, m->n, lo_ts);
    if (lo == m->n || m->set[lo].ts_us > hi_ts) return 0;
    size_t hi = lo + lower_ts(m->set + lo, m->n - lo, hi_ts + 1);
    if (!agents_overlap(m, &h, lo, hi)) return 0;
    ix_cursor c;
    if (ix_cursor_open(&c, value, len, min_ts)) return -EBADMSG;
    int rc = 0;
    size_t j = lo;
    while (j < hi && (rc = ix_cursor_next(&c)) > 0) {
        /* most entries are before the next set ref: one ts compare rejects them */
        if (c.cur.ts_us < m->set[j].ts_us) continue;
        while (j < hi && ref_cmp_inline(&m->set[j], &c.cur) < 0) j++;
        if (j < hi && store_ref_eq(&m->set[j], &c.cur)) m->hit[j++] = true;
    }
    ix_cursor_close(&c);
    return rc < 0 ? rc : 0;
}

static int ref_cmp(const void *a, const void *b) { return store_ref_cmp(a, b); }

int store_index_mark(store *s, const char *tenant, enum store_index_field field, const char *value, size_t value_len,
                     bool prefix, int64_t from_us, int64_t to_us, const store_event_ref *set, size_t n, bool *hit)
{
    MAMORI_ASSERT(set || n == 0);
    if (n == 0) return 0;
    probe P;
    if (probe_init(&P, s, tenant, field, value, value_len, prefix, from_us, to_us)) {
        probe_fini(&P);
        return 0;
    }
    if (P.q.pfx_truncated_only) { /* keys hold only the first IX_VALUE_MAX bytes: not decidable here */
        probe_fini(&P);
        return -ENOTSUP;
    }
    mark_ctx m = {.set = set, .n = n, .hit = hit, .from_us = P.q.from_us, .to_us = P.q.to_us};
    ref_vec mem = {0};
    probe_memory(&P, &mem);
    for (size_t i = 0; i < mem.n; i++) {
        const store_event_ref *r = bsearch(&mem.v[i], set, n, sizeof *set, ref_cmp);
        if (r) hit[r - set] = true;
    }
    ref_vec_fini(&mem);
    /* the set's distinct agents (a small hash set), for skipping other agents' postings */
    enum { SLOTS = MARK_AGENTS_MAX * 2 };
    uint64_t *table = mamori_xcalloc(SLOTS, sizeof *table);
    uint64_t *agents = mamori_xmalloc(MARK_AGENTS_MAX * sizeof *agents);
    size_t na = 0;
    bool many = false, has_zero = false;
    for (size_t i = 0; i < n && !many; i++) {
        uint64_t a = set[i].agent_hash;
        if (na && agents[na - 1] == a) continue; /* runs of one agent are common */
        if (a == 0) { /* 0 marks an empty slot */
            if (has_zero) continue;
            has_zero = true;
        } else {
            size_t h = (size_t)((a * 0x9E3779B97F4A7C15ull) >> 40) & (SLOTS - 1);
            while (table[h] && table[h] != a) h = (h + 1) & (SLOTS - 1);
            if (table[h] == a) continue;
            if (na < MARK_AGENTS_MAX) table[h] = a;
        }
        if (na == MARK_AGENTS_MAX) many = true;
        else agents[na++] = a;
    }
    free(table);
    if (!many) {
        qsort(agents, na, sizeof *agents, u64_cmp);
        m.agents = agents;
        m.agent_count = na;
    }
    int64_t first = MAMORI_MAX(set[0].ts_us, P.q.from_us), last = MAMORI_MIN(set[n - 1].ts_us, P.q.to_us - 1);
    int rc = 0;
    if (first <= last) rc = probe_stored(&P, store_day_of_us(first), store_day_of_us(last), mark_posting, &m);
    free(agents);
    probe_fini(&P);
    if (rc == -EBADMSG)
        LOG_RATELIMITED(LOG_LEVEL_ERROR, "store", 1, "index mark field=%s: corrupt posting list",
                        store_index_field_name(field));
    return rc;
}
