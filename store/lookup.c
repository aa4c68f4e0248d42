/* store/lookup.c — store_index_lookup: a K-way merge of posting lists in time order.
 *
 * Postings of one term are keyed by (day, min_ts), so they arrive from RocksDB in
 * nondecreasing min_ts; a posting is opened only once the merge has reached its min_ts,
 * which keeps memory to the postings that overlap in time (exact mode streams any list
 * size). Prefix mode gathers one day's matching postings and sorts them by min_ts first
 * (bounded by IX_LOOKUP_PREFIX_DAY_BYTES_MAX). The in-memory slices join the merge as one
 * more sorted source, and equal refs (re-delivered events) are emitted once. */
#include "internal.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct source {
    store_event_ref cur;
    bool is_mem;
    ix_cursor c;
    uint8_t *value; /* owned copy the cursor reads */
    const store_event_ref *mem;
    size_t mem_n, mem_i;
} source;

typedef struct stored_posting {
    int64_t min_ts;
    uint8_t *value;
    size_t len;
} stored_posting;

typedef struct lookup {
    store *s;
    ix_query q;
    store_ref_fn fn;
    void *ctx;
    uint8_t seek[IX_KEY_MAX];
    size_t seek_len;   /* prefix mode: bytes every matching key starts with (after the day) */
    uint8_t term[IX_TERM_MAX];
    size_t term_len;   /* exact mode: encoded term */
    source **heap;
    size_t heap_n, heap_cap;
    store_event_ref last;
    bool has_last;
    /* the posting stream */
    rocksdb_readoptions_t *ro_term, *ro_total;
    rocksdb_iterator_t *it, *day_it;
    uint32_t day, day_last;
    bool positioned, done;
    stored_posting *pp;
    size_t pp_n, pp_i, pp_cap;
    /* re-checking prefixes longer than what keys keep */
    const uint8_t *full_pfx;
    size_t full_pfx_len;
    json_parser *jp;
    arena a;
    buf json, scratch;
    int err;
} lookup;

/* ---- the heap of open sources ---- */

static bool src_less(const source *a, const source *b) { return store_ref_cmp(&a->cur, &b->cur) < 0; }

static void heap_push(lookup *L, source *x)
{
    if (L->heap_n == L->heap_cap) {
        L->heap_cap = L->heap_cap ? L->heap_cap * 2 : 16;
        L->heap = mamori_xrealloc(L->heap, L->heap_cap * sizeof *L->heap);
    }
    size_t i = L->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!src_less(x, L->heap[parent])) break;
        L->heap[i] = L->heap[parent];
        i = parent;
    }
    L->heap[i] = x;
}

static source *heap_pop(lookup *L)
{
    source *top = L->heap[0];
    source *x = L->heap[--L->heap_n];
    size_t i = 0, n = L->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && src_less(L->heap[c + 1], L->heap[c])) c++;
        if (!src_less(L->heap[c], x)) break;
        L->heap[i] = L->heap[c];
        i = c;
    }
    if (n) L->heap[i] = x;
    return top;
}

static void source_free(source *x)
{
    if (!x) return;
    if (!x->is_mem) ix_cursor_close(&x->c);
    free(x->value);
    free(x);
}

/* Advances to the next entry >= from; 1 if there is one, 0 at the end, <0 if corrupt. */
static int source_next(lookup *L, source *x)
{
    for (;;) {
        if (x->is_mem) {
            if (x->mem_i >= x->mem_n) return 0;
            x->cur = x->mem[x->mem_i++];
        } else {
            int rc = ix_cursor_next(&x->c);
            if (rc <= 0) return rc;
            x->cur = x->c.cur;
        }
        if (x->cur.ts_us >= L->q.from_us) return 1;
    }
}

/* ---- the stream of stored postings, in nondecreasing min_ts ---- */

static bool key_has(const uint8_t *k, size_t klen, const uint8_t *p, size_t plen)
{
    return klen >= plen && memcmp(k, p, plen) == 0;
}

/* The first day >= L->day holding any index key of the tenant, or false. */
static bool next_day_with_data(lookup *L)
{
    uint8_t k0[12];
    mamori_put_be64(k0, L->q.tenant_hash);
    mamori_put_be32(k0 + 8, L->day);
    rocksdb_iter_seek(L->day_it, (const char *)k0, sizeof k0);
    if (!rocksdb_iter_valid(L->day_it)) return false;
    size_t klen;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(L->day_it, &klen);
    if (klen < 12 || mamori_get_be64(k) != L->q.tenant_hash) return false;
    uint32_t day = mamori_get_be32(k + 8);
    if (day > L->day_last) return false;
    L->day = day;
    return true;
}

static int collect_day(lookup *L)
{
    L->pp_n = L->pp_i = 0;
    size_t held = 0;
    mamori_put_be32(L->seek + 8, L->day);
    rocksdb_iterator_t *it = L->it;
    for (rocksdb_iter_seek(it, (const char *)L->seek, L->seek_len); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (!key_has(k, klen, L->seek, L->seek_len) || klen < L->seek_len + IX_KEY_SUFFIX_BYTES) break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        int64_t min_ts = (int64_t)mamori_get_be64(k + klen - IX_KEY_SUFFIX_BYTES), max_ts;
        if (ix_posting_max_ts(v, vlen, min_ts, &max_ts)) return -EBADMSG;
        if (max_ts < L->q.from_us || min_ts >= L->q.to_us) continue;
        held += vlen;
        if (held > IX_LOOKUP_PREFIX_DAY_BYTES_MAX) {
            LOG_RATELIMITED(LOG_LEVEL_WARN, "store", 1,
                            "index lookup field=%s prefix: over %zu MiB of postings in day %u; narrow the prefix",
                            store_index_field_name((enum store_index_field)L->q.field),
                            IX_LOOKUP_PREFIX_DAY_BYTES_MAX >> 20, L->day);
            return -E2BIG;
        }
        if (L->pp_n == L->pp_cap) {
            L->pp_cap = L->pp_cap ? L->pp_cap * 2 : 64;
            L->pp = mamori_xrealloc(L->pp, L->pp_cap * sizeof *L->pp);
        }
        L->pp[L->pp_n++] = (stored_posting){.min_ts = min_ts, .value = mamori_xmalloc(vlen), .len = vlen};
        memcpy(L->pp[L->pp_n - 1].value, v, vlen);
    }
    return 0;
}

static int cmp_stored(const void *a, const void *b)
{
    const stored_posting *x = a, *y = b;
    return x->min_ts < y->min_ts ? -1 : x->min_ts > y->min_ts;
}

/* Positions the stream on the next posting; false when there is none. */
static bool stream_position(lookup *L)
{
    while (!L->done && !L->positioned) {
        if (L->day > L->day_last || !next_day_with_data(L)) {
            L->done = true;
            break;
        }
        if (L->q.prefix) {
            int rc = collect_day(L);
            if (rc) {
                L->err = rc;
                L->done = true;
                break;
            }
            if (L->pp_n > 1) qsort(L->pp, L->pp_n, sizeof *L->pp, cmp_stored);
            L->positioned = L->pp_n > 0;
        } else {
            uint8_t key[IX_KEY_MAX];
            ix_key_prefix(key, L->q.tenant_hash, L->day, L->q.field);
            memcpy(key + IX_KEY_PREFIX_BYTES, L->term, L->term_len);
            memset(key + IX_KEY_PREFIX_BYTES + L->term_len, 0, IX_KEY_SUFFIX_BYTES);
            rocksdb_iter_seek(L->it, (const char *)key, IX_KEY_PREFIX_BYTES + L->term_len + IX_KEY_SUFFIX_BYTES);
            L->positioned = false;
            if (rocksdb_iter_valid(L->it)) {
                size_t klen;
                const uint8_t *k = (const uint8_t *)rocksdb_iter_key(L->it, &klen);
                L->positioned = klen == IX_KEY_PREFIX_BYTES + L->term_len + IX_KEY_SUFFIX_BYTES &&
                                memcmp(k, key, IX_KEY_PREFIX_BYTES + L->term_len) == 0;
            }
        }
        if (!L->positioned) {
            if (L->day == UINT32_MAX) L->done = true;
            else L->day++;
        }
    }
    return L->positioned;
}

static void stream_advance(lookup *L)
{
    if (L->q.prefix) {
        free(L->pp[L->pp_i].value);
        L->pp[L->pp_i].value = NULL;
        if (++L->pp_i < L->pp_n) return;
    } else {
        rocksdb_iter_next(L->it);
        if (rocksdb_iter_valid(L->it)) {
            size_t klen;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(L->it, &klen);
            uint8_t prefix[IX_KEY_PREFIX_BYTES];
            ix_key_prefix(prefix, L->q.tenant_hash, L->day, L->q.field);
            if (klen == IX_KEY_PREFIX_BYTES + L->term_len + IX_KEY_SUFFIX_BYTES &&
                memcmp(k, prefix, IX_KEY_PREFIX_BYTES) == 0 &&
                memcmp(k + IX_KEY_PREFIX_BYTES, L->term, L->term_len) == 0)
                return;
        }
    }
    L->positioned = false;
    if (L->day == UINT32_MAX) L->done = true;
    else L->day++;
}

/* The current posting: its min_ts, and (when take) a source for it. */
static int64_t stream_min_ts(lookup *L)
{
    if (L->q.prefix) return L->pp[L->pp_i].min_ts;
    size_t klen;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(L->it, &klen);
    return (int64_t)mamori_get_be64(k + klen - IX_KEY_SUFFIX_BYTES);
}

static int stream_take(lookup *L, source **out)
{
    *out = NULL;
    int64_t min_ts = stream_min_ts(L);
    uint8_t *value;
    size_t len;
    if (L->q.prefix) {
        value = L->pp[L->pp_i].value;
        len = L->pp[L->pp_i].len;
        L->pp[L->pp_i].value = NULL;
    } else {
        const char *v = rocksdb_iter_value(L->it, &len);
        int64_t max_ts;
        if (ix_posting_max_ts((const uint8_t *)v, len, min_ts, &max_ts)) return -EBADMSG;
        if (max_ts < L->q.from_us) {
            stream_advance(L);
            return 0;
        }
        value = mamori_xmalloc(len ? len : 1);
        memcpy(value, v, len);
    }
    stream_advance(L);
    source *x = mamori_xcalloc(1, sizeof *x);
    x->value = value;
    if (ix_cursor_open(&x->c, value, len, min_ts)) {
        free(value);
        free(x);
        return -EBADMSG;
    }
    int rc = source_next(L, x);
    if (rc <= 0) {
        source_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

/* ---- re-checking long prefixes against the stored event ---- */

typedef struct recheck_ctx {
    lookup *L;
    bool match;
} recheck_ctx;

static void recheck_value(void *arg, enum store_index_field f, const char *value, size_t len)
{
    recheck_ctx *r = arg;
    lookup *L = r->L;
    if (r->match || (uint8_t)f != L->q.field || len < L->full_pfx_len) return;
    for (size_t i = 0; i < L->full_pfx_len; i++) {
        uint8_t c = (uint8_t)value[i];
        if (c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
        if (c != L->full_pfx[i]) return;
    }
    r->match = true;
}

static int recheck(lookup *L, const store_event_ref *ref, bool *match)
{
    *match = false;
    int rc = store_get_event(L->s, L->q.tenant_hash, ref->ts_us, ref->agent_hash, ref->seq, ref->index, &L->json);
    if (rc == -ENOENT) return 0;
    if (rc) return rc;
    if (!L->jp) L->jp = json_parser_create();
    arena_reset(&L->a);
    json_value root;
    json_error jerr;
    if (json_parse(L->jp, &L->a, L->json.data, L->json.len, &root, &jerr)) return 0;
    recheck_ctx r = {.L = L};
    ix_extract_json(&root, recheck_value, &r);
    *match = r.match;
    return 0;
}

/* ---- the merge ---- */

static int run_merge(lookup *L)
{
    for (;;) {
        while (stream_position(L)) {
            if (L->heap_n && stream_min_ts(L) > L->heap[0]->cur.ts_us) break;
            if (stream_min_ts(L) >= L->q.to_us) {
                L->done = true;
                L->positioned = false;
                break;
            }
            source *x;
            int rc = stream_take(L, &x);
            if (rc) return rc;
            if (x) heap_push(L, x);
        }
        if (L->err) return L->err;
        if (L->heap_n == 0) return 0;
        source *top = heap_pop(L);
        if (top->cur.ts_us >= L->q.to_us) {
            source_free(top);
            return 0;
        }
        if (!L->has_last || !store_ref_eq(&L->last, &top->cur)) {
            L->last = top->cur;
            L->has_last = true;
            bool ok = true;
            if (L->full_pfx) {
                int rc = recheck(L, &top->cur, &ok);
                if (rc) {
                    source_free(top);
                    return rc;
                }
            }
            if (ok && L->fn(L->ctx, &top->cur)) {
                source_free(top);
                return 0;
            }
        }
        int rc = source_next(L, top);
        if (rc < 0) {
            source_free(top);
            return rc;
        }
        if (rc == 0) source_free(top);
        else heap_push(L, top);
    }
}

static int cmp_ref(const void *a, const void *b) { return store_ref_cmp(a, b); }

int store_index_lookup(store *s, const char *tenant, enum store_index_field field, const char *value,
                       size_t value_len, bool prefix, int64_t from_us, int64_t to_us, store_ref_fn fn, void *ctx)
{
    MAMORI_ASSERT(s && tenant && fn && (value || value_len == 0));
    MAMORI_ASSERT((int)field > 0 && field < STORE_IX_FIELD_COUNT_PLUS_ONE);
    uint64_t tenant_hash = event_tenant_hash(tenant);
    if (from_us < 0) from_us = 0;
    int64_t floor_us = store_day_start_us(store_tenant_floor_day(s, tenant_hash));
    if (from_us < floor_us) from_us = floor_us;
    if (from_us >= to_us || (!prefix && value_len == 0)) return 0;

    lookup L;
    memset(&L, 0, sizeof L);
    L.s = s;
    L.fn = fn;
    L.ctx = ctx;
    arena_init(&L.a, 16 * 1024);
    buf_init(&L.json);
    buf_init(&L.scratch);
    L.q = (ix_query){.tenant_hash = tenant_hash, .field = (uint8_t)field, .prefix = prefix, .from_us = from_us,
                     .to_us = to_us};
    ix_term term;
    ix_term_make(&L.scratch, value, value_len, &term);
    if (!prefix) {
        L.q.term = term;
        L.term_len = ix_term_encode(L.term, &term);
    } else {
        L.q.pfx = term.value;
        L.q.pfx_len = term.len;
        ix_key_prefix(L.seek, tenant_hash, 0, (uint8_t)field);
        L.seek_len = IX_KEY_PREFIX_BYTES + ix_escape(L.seek + IX_KEY_PREFIX_BYTES, term.value, term.len);
        if (term.truncated) {
            /* keys keep IX_VALUE_MAX bytes: match those, then check the event itself */
            L.q.pfx_truncated_only = true;
            L.seek[L.seek_len++] = 0x00;
            L.seek[L.seek_len++] = 0x02;
            L.full_pfx = (const uint8_t *)L.scratch.data;
            L.full_pfx_len = value_len;
        }
    }

    tw_sync(s); /* every group committed before this call is in the slice */
    /* In-memory slices first, then the RocksDB view: a slice written in between is seen
     * twice (and deduplicated) rather than not at all. */
    ref_vec mem = {0};
    pthread_rwlock_rdlock(&s->ix_rw);
    ix_slice_collect(s->active, &L.q, &mem);
    for (const ix_slice *sl = s->closed_head; sl; sl = sl->next) ix_slice_collect(sl, &L.q, &mem);
    pthread_rwlock_unlock(&s->ix_rw);
    if (mem.n) {
        qsort(mem.v, mem.n, sizeof *mem.v, cmp_ref);
        source *x = mamori_xcalloc(1, sizeof *x);
        x->is_mem = true;
        x->mem = mem.v;
        x->mem_n = mem.n;
        if (source_next(&L, x) > 0) heap_push(&L, x);
        else source_free(x);
    }

    L.ro_total = rocksdb_readoptions_create();
    rocksdb_readoptions_set_total_order_seek(L.ro_total, 1);
    L.day_it = rocksdb_create_iterator_cf(s->db, L.ro_total, s->cf[CF_INDEX]);
    if (prefix) {
        L.it = rocksdb_create_iterator_cf(s->db, L.ro_total, s->cf[CF_INDEX]);
    } else {
        L.ro_term = rocksdb_readoptions_create();
        rocksdb_readoptions_set_prefix_same_as_start(L.ro_term, 1);
        L.it = rocksdb_create_iterator_cf(s->db, L.ro_term, s->cf[CF_INDEX]);
    }
    L.day = store_day_of_us(from_us);
    L.day_last = store_day_of_us(to_us - 1);

    int rc = run_merge(&L);

    char *err = NULL;
    rocksdb_iter_get_error(L.it, &err);
    if (!err) rocksdb_iter_get_error(L.day_it, &err);
    if (err) {
        int e = store_rocks_error(err, "index lookup");
        if (rc == 0) rc = e;
    }
    if (rc == -EBADMSG)
        LOG_RATELIMITED(LOG_LEVEL_ERROR, "store", 1, "index lookup field=%s: corrupt posting list",
                        store_index_field_name(field));
    while (L.heap_n) source_free(heap_pop(&L));
    free(L.heap);
    for (size_t i = L.pp_i; i < L.pp_n; i++) free(L.pp[i].value);
    free(L.pp);
    rocksdb_iter_destroy(L.it);
    rocksdb_iter_destroy(L.day_it);
    if (L.ro_term) rocksdb_readoptions_destroy(L.ro_term);
    rocksdb_readoptions_destroy(L.ro_total);
    ref_vec_fini(&mem);
    json_parser_destroy(L.jp);
    arena_fini(&L.a);
    buf_fini(&L.json);
    buf_fini(&L.scratch);
    return rc;
}
