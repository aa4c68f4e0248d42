/* store/slice.c — the in-memory index slice: every indexed (tenant, day, field, value) of
 * the events written since the slice opened, mapped to its list of event numbers. The term
 * worker fills it after each group commit; lookups read it; when it closes, the slice
 * writer turns each list into one sorted posting value (ix_slice_build) and the postings
 * into one SST file (ixthread.c). */
#include "internal.h"

#include "core/clock.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK_HEADER 3u /* next, cap, used */
#define BLOCK_FIRST_CAP 2u
#define BLOCK_MAX_CAP 1024u

ix_slice *ix_slice_create(void)
{
    ix_slice *sl = mamori_xcalloc(1, sizeof *sl);
    arena_init(&sl->values, 1u << 20);
    sl->table_mask = 4095;
    sl->table = mamori_xcalloc(sl->table_mask + 1, sizeof *sl->table);
    sl->pool_cap = 1u << 16;
    sl->pool = mamori_xmalloc(sl->pool_cap * sizeof *sl->pool);
    sl->pool_len = 1; /* offset 0 means "no block" */
    sl->opened_mono_ms = clock_mono_ms();
    return sl;
}

void ix_slice_destroy(ix_slice *sl)
{
    if (!sl) return;
    arena_fini(&sl->values);
    free(sl->events);
    free(sl->postings);
    free(sl->table);
    free(sl->pool);
    free(sl->days);
    free(sl);
}

size_t ix_slice_bytes(const ix_slice *sl)
{
    return (size_t)sl->event_cap * sizeof *sl->events + (size_t)sl->posting_cap * sizeof *sl->postings +
           ((size_t)sl->table_mask + 1) * sizeof *sl->table + sl->pool_cap * sizeof *sl->pool +
           sl->values.bytes_reserved + (size_t)sl->day_cap * sizeof *sl->days;
}

bool ix_slice_empty(const ix_slice *sl) { return sl->event_count == 0 && !sl->has_groups; }

void ix_slice_note_group(ix_slice *sl, uint64_t group_no)
{
    if (!sl->has_groups) {
        sl->first_group = group_no;
        sl->has_groups = true;
    }
    MAMORI_ASSERT(group_no >= sl->first_group && group_no >= sl->last_group);
    sl->last_group = group_no;
}

uint32_t ix_slice_add_event(ix_slice *sl, const store_event_ref *ref)
{
    MAMORI_ASSERT(sl->event_count < IX_SLICE_EVENTS_MAX);
    if (sl->event_count == sl->event_cap) {
        sl->event_cap = sl->event_cap ? sl->event_cap * 2 : 4096;
        sl->events = mamori_xrealloc(sl->events, (size_t)sl->event_cap * sizeof *sl->events);
    }
    sl->events[sl->event_count] = *ref;
    return sl->event_count++;
}

static uint32_t pool_alloc(ix_slice *sl, uint32_t cap)
{
    size_t need = BLOCK_HEADER + cap;
    if (sl->pool_len + need > sl->pool_cap) {
        while (sl->pool_len + need > sl->pool_cap) sl->pool_cap *= 2;
        MAMORI_ASSERT(sl->pool_cap <= UINT32_MAX);
        sl->pool = mamori_xrealloc(sl->pool, sl->pool_cap * sizeof *sl->pool);
    }
    uint32_t off = (uint32_t)sl->pool_len;
    sl->pool[off] = 0;
    sl->pool[off + 1] = cap;
    sl->pool[off + 2] = 0;
    sl->pool_len += need;
    return off;
}

static void posting_append(ix_slice *sl, ix_posting *p, uint32_t event_no)
{
    uint32_t b = p->last_block;
    if (b == 0 || sl->pool[b + 2] == sl->pool[b + 1]) {
        uint32_t cap = b == 0 ? BLOCK_FIRST_CAP : MAMORI_MIN(sl->pool[b + 1] * 2, BLOCK_MAX_CAP);
        uint32_t nb = pool_alloc(sl, cap);
        if (b == 0) p->first_block = nb;
        else sl->pool[b] = nb;
        p->last_block = b = nb;
    }
    sl->pool[b + BLOCK_HEADER + sl->pool[b + 2]++] = event_no;
    p->count++;
    p->last_event = event_no;
    sl->entries++;
}

static void table_grow(ix_slice *sl)
{
    uint32_t n = (sl->table_mask + 1) * 2;
    uint64_t *t = mamori_xcalloc(n, sizeof *t);
    for (uint32_t i = 0; i < sl->posting_count; i++) {
        uint64_t h = sl->postings[i].term_hash;
        uint32_t j = (uint32_t)h & (n - 1);
        while (t[j]) j = (j + 1) & (n - 1);
        t[j] = (h & 0xFFFFFFFF00000000ull) | (uint64_t)(i + 1);
    }
    free(sl->table);
    sl->table = t;
    sl->table_mask = n - 1;
}

static bool posting_matches(const ix_posting *p, uint64_t tenant_hash, uint32_t day, uint8_t field,
                            const ix_term *t)
{
    return p->tenant_hash == tenant_hash && p->day == day && p->field == field && p->value_len == t->len &&
           p->truncated == (uint8_t)t->truncated && p->full_hash == t->full_hash &&
           memcmp(p->value, t->value, t->len) == 0;
}

static ix_posting *slice_find(const ix_slice *sl, uint64_t tenant_hash, uint32_t day, uint8_t field,
                              const ix_term *t, uint64_t h, uint32_t *slot_out)
{
    uint32_t i = (uint32_t)h & sl->table_mask;
    uint64_t tag = h & 0xFFFFFFFF00000000ull;
    for (;;) {
        uint64_t e = sl->table[i];
        if (!e) {
            if (slot_out) *slot_out = i;
            return NULL;
        }
        if ((e & 0xFFFFFFFF00000000ull) == tag) {
            ix_posting *p = &sl->postings[(uint32_t)e - 1];
            if (posting_matches(p, tenant_hash, day, field, t)) return p;
        }
        i = (i + 1) & sl->table_mask;
    }
}

static void note_day(ix_slice *sl, uint64_t tenant_hash, uint32_t day)
{
    for (uint32_t i = sl->day_count; i-- > 0;) {
        if (sl->days[i].tenant_hash == tenant_hash && sl->days[i].day == day) return;
    }
    if (sl->day_count == sl->day_cap) {
        sl->day_cap = sl->day_cap ? sl->day_cap * 2 : 8;
        sl->days = mamori_xrealloc(sl->days, (size_t)sl->day_cap * sizeof *sl->days);
    }
    sl->days[sl->day_count++] = (ix_day_ref){.tenant_hash = tenant_hash, .day = day};
}

void ix_slice_add_term(ix_slice *sl, uint32_t event_no, uint64_t tenant_hash, uint32_t day, uint8_t field,
                       const ix_term *t, uint64_t term_hash)
{
    if ((sl->posting_count + 1) * 2 > sl->table_mask + 1) table_grow(sl);
    uint32_t slot;
    ix_posting *p = slice_find(sl, tenant_hash, day, field, t, term_hash, &slot);
    if (!p) {
        if (sl->posting_count == sl->posting_cap) {
            sl->posting_cap = sl->posting_cap ? sl->posting_cap * 2 : 4096;
            sl->postings = mamori_xrealloc(sl->postings, (size_t)sl->posting_cap * sizeof *sl->postings);
        }
        p = &sl->postings[sl->posting_count];
        *p = (ix_posting){.tenant_hash = tenant_hash,
                          .term_hash = term_hash,
                          .full_hash = t->full_hash,
                          .value = arena_memdup(&sl->values, t->value, t->len ? t->len : 1),
                          .day = day,
                          .value_len = t->len,
                          .field = field,
                          .truncated = (uint8_t)t->truncated};
        sl->posting_count++;
        sl->table[slot] = (term_hash & 0xFFFFFFFF00000000ull) | sl->posting_count;
        if (sl->day_count == 0 || sl->days[sl->day_count - 1].day != day ||
            sl->days[sl->day_count - 1].tenant_hash != tenant_hash)
            note_day(sl, tenant_hash, day);
    } else if (p->count && p->last_event == event_no) {
        return; /* the same value twice in one event (arrays, several hash fields) */
    }
    posting_append(sl, p, event_no);
}

void ref_vec_push(ref_vec *rv, const store_event_ref *r)
{
    if (rv->n == rv->cap) {
        rv->cap = rv->cap ? rv->cap * 2 : 256;
        rv->v = mamori_xrealloc(rv->v, rv->cap * sizeof *rv->v);
    }
    rv->v[rv->n++] = *r;
}

void ref_vec_fini(ref_vec *rv)
{
    free(rv->v);
    rv->v = NULL;
    rv->n = rv->cap = 0;
}

static void collect_posting(const ix_slice *sl, const ix_posting *p, const ix_query *q, ref_vec *out)
{
    for (uint32_t b = p->first_block; b; b = sl->pool[b]) {
        uint32_t used = sl->pool[b + 2];
        for (uint32_t i = 0; i < used; i++) {
            const store_event_ref *r = &sl->events[sl->pool[b + BLOCK_HEADER + i]];
            if (r->ts_us >= q->from_us && r->ts_us < q->to_us) ref_vec_push(out, r);
        }
    }
}

void ix_slice_collect(const ix_slice *sl, const ix_query *q, ref_vec *out)
{
    uint32_t day_from = store_day_of_us(q->from_us), day_to = store_day_of_us(q->to_us - 1);
    if (!q->prefix) {
        for (uint32_t i = 0; i < sl->day_count; i++) {
            const ix_day_ref *d = &sl->days[i];
            if (d->tenant_hash != q->tenant_hash || d->day < day_from || d->day > day_to) continue;
            uint64_t h = ix_term_hash(q->tenant_hash, d->day, q->field, &q->term);
            const ix_posting *p = slice_find(sl, q->tenant_hash, d->day, q->field, &q->term, h, NULL);
            if (p) collect_posting(sl, p, q, out);
        }
        return;
    }
    for (uint32_t i = 0; i < sl->posting_count; i++) {
        const ix_posting *p = &sl->postings[i];
        if (p->tenant_hash != q->tenant_hash || p->field != q->field || p->day < day_from || p->day > day_to)
            continue;
        if (q->pfx_truncated_only) {
            if (!p->truncated || memcmp(p->value, q->pfx, IX_VALUE_MAX) != 0) continue;
        } else if (p->value_len < q->pfx_len || memcmp(p->value, q->pfx, q->pfx_len) != 0) {
            continue;
        }
        collect_posting(sl, p, q, out);
    }
}

/* ---- closing: sorted posting values ----
 * Memory-latency bound, so: the event table is sorted once (radix on ts) and each
 * posting's event numbers become ranks into it (sorted as u32, mostly already in order);
 * postings are encoded in creation order (their blocks were allocated in roughly that
 * order) into one value buffer; then the keys are sorted and emitted with their values. */

typedef struct sort_item {
    uint64_t key;
    uint32_t id;
} sort_item;

/* Event numbers in (ts, agent, seq, index) order: LSD radix sort on ts (11-bit digits over
 * the slice's ts range), then the rare equal-ts runs by the whole ref. */
static uint32_t *slice_order(const ix_slice *sl)
{
    uint32_t n = sl->event_count;
    uint32_t *order = mamori_xmalloc((n ? n : 1) * sizeof *order);
    if (n == 0) return order;
    int64_t lo = sl->events[0].ts_us, hi = lo;
    for (uint32_t i = 1; i < n; i++) {
        lo = MAMORI_MIN(lo, sl->events[i].ts_us);
        hi = MAMORI_MAX(hi, sl->events[i].ts_us);
    }
    sort_item *a = mamori_xmalloc(n * sizeof *a), *b = mamori_xmalloc(n * sizeof *b);
    for (uint32_t i = 0; i < n; i++) a[i] = (sort_item){.key = (uint64_t)(sl->events[i].ts_us - lo), .id = i};
    uint64_t range = (uint64_t)(hi - lo);
    enum { DIGIT_BITS = 11, BUCKETS = 1 << DIGIT_BITS };
    uint32_t *counts = mamori_xmalloc(BUCKETS * sizeof *counts);
    for (unsigned shift = 0; shift < 64 && (range >> shift) != 0; shift += DIGIT_BITS) {
        memset(counts, 0, BUCKETS * sizeof *counts);
        for (uint32_t i = 0; i < n; i++) counts[(a[i].key >> shift) & (BUCKETS - 1)]++;
        uint32_t sum = 0;
        for (uint32_t d = 0; d < BUCKETS; d++) {
            uint32_t c = counts[d];
            counts[d] = sum;
            sum += c;
        }
        for (uint32_t i = 0; i < n; i++) b[counts[(a[i].key >> shift) & (BUCKETS - 1)]++] = a[i];
        sort_item *t = a;
        a = b;
        b = t;
    }
    for (uint32_t i = 0; i < n; i++) order[i] = a[i].id;
    free(counts);
    free(a);
    free(b);
    for (uint32_t i = 1; i < n; i++) { /* equal timestamps: order by the whole ref */
        uint32_t cur = order[i];
        uint32_t j = i;
        while (j > 0 && sl->events[order[j - 1]].ts_us == sl->events[cur].ts_us &&
               store_ref_cmp(&sl->events[order[j - 1]], &sl->events[cur]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = cur;
    }
    return order;
}

/* Sorts ranks (all < limit): insertion sort when short, else LSD radix with 11-bit digits. */
static void sort_ranks(uint32_t *v, size_t n, uint32_t limit, uint32_t **tmp, size_t *tmp_cap)
{
    if (n <= 64) {
        for (size_t i = 1; i < n; i++) {
            uint32_t x = v[i];
            size_t j = i;
            while (j > 0 && v[j - 1] > x) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
        return;
    }
    if (n > *tmp_cap) {
        *tmp_cap = n;
        *tmp = mamori_xrealloc(*tmp, n * sizeof **tmp);
    }
    enum { BITS = 11, BUCKETS = 1 << BITS };
    uint32_t counts[BUCKETS];
    uint32_t *a = v, *b = *tmp;
    for (unsigned shift = 0; shift < 32 && (limit >> shift) != 0; shift += BITS) {
        memset(counts, 0, sizeof counts);
        for (size_t i = 0; i < n; i++) counts[(a[i] >> shift) & (BUCKETS - 1)]++;
        uint32_t sum = 0;
        for (uint32_t d = 0; d < BUCKETS; d++) {
            uint32_t c = counts[d];
            counts[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) b[counts[(a[i] >> shift) & (BUCKETS - 1)]++] = a[i];
        uint32_t *t = a;
        a = b;
        b = t;
    }
    if (a != v) memcpy(v, a, n * sizeof *v);
}

typedef struct built_posting {
    size_t key_off, value_off;
    uint32_t key_len, value_len;
    int64_t min_ts;
} built_posting;

static int cmp_built(const void *a, const void *b, void *ctx)
{
    const built_posting *x = a, *y = b;
    const uint8_t *keys = ctx;
    size_t n = MAMORI_MIN(x->key_len, y->key_len);
    int c = memcmp(keys + x->key_off, keys + y->key_off, n);
    return c ? c : (x->key_len < y->key_len ? -1 : x->key_len > y->key_len);
}

int ix_slice_build(ix_slice *sl, uint64_t slice_id, ix_encoder *enc, ix_floor_fn floor_fn, void *floor_ctx,
                   ix_emit_fn emit, void *emit_ctx, uint64_t *postings_written, uint64_t *bytes_written)
{
    built_posting *built = mamori_xmalloc((sl->posting_count ? sl->posting_count : 1) * sizeof *built);
    uint32_t nb = 0;
    /* the event table in ref order; each posting's event numbers become ranks into it */
    uint32_t *order = slice_order(sl);
    uint32_t *rank = mamori_xmalloc((sl->event_count ? sl->event_count : 1) * sizeof *rank);
    store_event_ref *sorted_events = mamori_xmalloc((sl->event_count ? sl->event_count : 1) * sizeof *sorted_events);
    for (uint32_t i = 0; i < sl->event_count; i++) {
        rank[order[i]] = i;
        sorted_events[i] = sl->events[order[i]];
    }
    free(order);
    store_event_ref *refs = NULL;
    uint32_t *ranks = NULL, *radix_tmp = NULL;
    size_t refs_cap = 0, radix_cap = 0;
    buf values, keys;
    buf_init(&values);
    buf_init(&keys);
    uint64_t floor_tenant = 0;
    uint32_t floor_day = 0;
    bool floor_known = false;

    for (uint32_t pi = 0; pi < sl->posting_count; pi++) {
        const ix_posting *p = &sl->postings[pi];
        if (!floor_known || floor_tenant != p->tenant_hash) {
            floor_tenant = p->tenant_hash;
            floor_day = floor_fn ? floor_fn(floor_ctx, p->tenant_hash) : 0;
            floor_known = true;
        }
        if (p->day < floor_day) continue; /* retention already removed that day */
        if (p->count > refs_cap) {
            refs_cap = MAMORI_MAX((size_t)p->count, refs_cap * 2);
            refs = mamori_xrealloc(refs, refs_cap * sizeof *refs);
            ranks = mamori_xrealloc(ranks, refs_cap * sizeof *ranks);
        }
        size_t n = 0;
        bool is_sorted = true;
        for (uint32_t b = p->first_block; b; b = sl->pool[b]) {
            uint32_t used = sl->pool[b + 2];
            for (uint32_t i = 0; i < used; i++) {
                uint32_t r = rank[sl->pool[b + BLOCK_HEADER + i]];
                if (n && r < ranks[n - 1]) is_sorted = false;
                ranks[n++] = r;
            }
        }
        MAMORI_ASSERT(n == p->count);
        if (!is_sorted) sort_ranks(ranks, n, sl->event_count, &radix_tmp, &radix_cap);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const store_event_ref *r = &sorted_events[ranks[i]];
            if (m == 0 || !store_ref_eq(&refs[m - 1], r)) refs[m++] = *r; /* the same event written twice */
        }
        built_posting *bp = &built[nb++];
        bp->min_ts = refs[0].ts_us;
        bp->value_off = values.len;
        ix_posting_encode(enc, refs, m, &values);
        bp->value_len = (uint32_t)(values.len - bp->value_off);
        ix_term t = {.value = p->value, .len = p->value_len, .truncated = p->truncated, .full_hash = p->full_hash};
        buf_reserve(&keys, IX_KEY_PREFIX_BYTES + IX_TERM_MAX);
        uint8_t *k = (uint8_t *)keys.data + keys.len;
        ix_key_prefix(k, p->tenant_hash, p->day, p->field);
        bp->key_off = keys.len;
        bp->key_len = (uint32_t)(IX_KEY_PREFIX_BYTES + ix_term_encode(k + IX_KEY_PREFIX_BYTES, &t));
        keys.len += bp->key_len;
    }
    /* (tenant, day, field, term) is unique in a slice: its order is the full keys' order */
    if (nb > 1) qsort_r(built, nb, sizeof *built, cmp_built, keys.data);
    uint64_t bytes = 0;
    uint8_t key[IX_KEY_MAX];
    int rc = 0;
    for (uint32_t i = 0; i < nb && rc == 0; i++) {
        const built_posting *bp = &built[i];
        memcpy(key, keys.data + bp->key_off, bp->key_len);
        mamori_put_be64(key + bp->key_len, (uint64_t)bp->min_ts);
        mamori_put_be64(key + bp->key_len + 8, slice_id);
        size_t klen = bp->key_len + IX_KEY_SUFFIX_BYTES;
        rc = emit(emit_ctx, key, klen, values.data + bp->value_off, bp->value_len);
        bytes += klen + bp->value_len;
    }
    buf_fini(&values);
    buf_fini(&keys);
    free(refs);
    free(ranks);
    free(radix_tmp);
    free(rank);
    free(sorted_events);
    free(built);
    *postings_written = nb;
    *bytes_written = bytes;
    return rc;
}
