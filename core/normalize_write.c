/* core/normalize_write.c — the end of the normalizer: one sort of the entries by path,
 * one pass that settles paths claimed twice (mapped EventData that loses goes back to
 * winlog.event_data.*), and one walk that writes the canonical JSON: nested objects,
 * members sorted, compact. */
#include "event.h"
#include "normalize_internal.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- sort, settle, write ----------------------------------------------------------------- */

/* Sort order: bytewise, except that '.' sorts before every other byte. Then all paths
 * under "a." follow "a" directly, so duplicates and leaf/prefix conflicts are neighbours,
 * and the nested JSON comes out with each object's keys in bytewise order. The entry keys
 * (rank_word in normalize_internal.h) follow the same order. */
static inline unsigned rank_of(unsigned char c) { return c == '.' ? 0u : c < '.' ? c + 1u : c; }

/* Ranked compare of two byte strings: the first differing byte decides, ranked; equal up
 * to the shorter: shorter first. */
static int path_cmp(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t n = MAMORI_MIN(a_len, b_len), i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
            i += (size_t)__builtin_ctzll(x ^ y) / 8;
            break;
        }
    }
    while (i < n && a[i] == b[i]) i++;
    if (i < n) return rank_of((unsigned char)a[i]) < rank_of((unsigned char)b[i]) ? -1 : 1;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* a and b alike in in_event_data (their keys are of the same bytes). */
static int entry_cmp(const struct entry *a, const struct entry *b)
{
    if (a->key0 != b->key0) return a->key0 < b->key0 ? -1 : 1;
    if (a->key1 != b->key1) return a->key1 < b->key1 ? -1 : 1;
    if (a->in_event_data) /* both: the prefix is equal */
        return path_cmp(a->path + EVENT_DATA_PREFIX_LEN, a->path_len - EVENT_DATA_PREFIX_LEN,
                        b->path + EVENT_DATA_PREFIX_LEN, b->path_len - EVENT_DATA_PREFIX_LEN);
    return path_cmp(a->path, a->path_len, b->path, b->path_len);
}

/* Equal paths have equal keys whichever bytes those are of (in_event_data is a function
 * of the path). */
static inline bool same_path(const struct entry *a, const struct entry *b)
{
    return a->path_len == b->path_len && a->key0 == b->key0 && bytes_eq(a->path, b->path, a->path_len);
}

static inline bool key_less(const struct sort_key *a, const struct sort_key *b)
{
    if (a->key0 != b->key0) return a->key0 < b->key0;
    if (a->key1 != b->key1) return a->key1 < b->key1;
    return entry_cmp(a->e, b->e) < 0;
}

/* Stable: equal paths keep their push order, which norm_settle's choice among entries of
 * one kind depends on. */
static void sort_keys(struct sort_key *v, struct sort_key *tmp, uint32_t count)
{
    if (count <= 16) {
        for (uint32_t i = 1; i < count; i++) {
            struct sort_key k = v[i];
            uint32_t j = i;
            while (j > 0 && key_less(&k, &v[j - 1])) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = k;
        }
        return;
    }
    uint32_t half = count / 2;
    sort_keys(v, tmp, half);
    sort_keys(v + half, tmp + half, count - half);
    if (!key_less(&v[half], &v[half - 1])) return;
    uint32_t i = 0, j = half, k = 0;
    while (i < half && j < count) tmp[k++] = key_less(&v[j], &v[i]) ? v[j++] : v[i++];
    while (i < half) tmp[k++] = v[i++];
    while (j < count) tmp[k++] = v[j++];
    memcpy(v, tmp, count * sizeof *v);
}

/* Sorts v[0..count) when v[0..run) is sorted already: the rest alone, then one merge. */
static void sort_after_run(struct sort_key *v, struct sort_key *tmp, uint32_t run, uint32_t count)
{
    if (run >= count) return;
    sort_keys(v + run, tmp, count - run);
    if (!key_less(&v[run], &v[run - 1])) return;
    uint32_t i = 0, j = run, k = 0;
    while (i < run && j < count) tmp[k++] = key_less(&v[j], &v[i]) ? v[j++] : v[i++];
    while (i < run) tmp[k++] = v[i++];
    while (j < count) tmp[k++] = v[j++];
    memcpy(v, tmp, count * sizeof *v);
}

/* The length of the sorted run that v starts with. */
static uint32_t sorted_run(const struct sort_key *v, uint32_t count)
{
    uint32_t run = 1;
    while (run < count && !key_less(&v[run], &v[run - 1])) run++;
    return MAMORI_MIN(run, count);
}

/* Whether a path not under EVENT_DATA_PREFIX sorts before the paths under it. */
static inline bool before_event_data(const struct entry *e, uint64_t prefix_key0, uint64_t prefix_key1)
{
    if (e->key0 != prefix_key0) return e->key0 < prefix_key0;
    if (e->key1 != prefix_key1) return e->key1 < prefix_key1;
    return path_cmp(e->path, e->path_len, EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN) < 0;
}

/* Entries are pushed in runs (the winlog System fields and the stamps in path order), and
 * the unmapped EventData paths share one prefix: those are sorted apart by the bytes after
 * it and go in as one block, where the first of the others sorts after the prefix; of the
 * others, the run they start with (the System fields, usually) is merged with the rest
 * sorted. The result is the one stable sort of all the entries would give. */
void norm_sort_entries(normalizer *n, uint32_t count)
{
    struct sort_key *keys = n->sort_keys, *event_data = n->sort_event_data;
    uint32_t others = 0, in_event_data = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct entry *e = n->order[i];
        struct sort_key k = {e->key0, e->key1, e};
        if (e->in_event_data) event_data[in_event_data++] = k;
        else keys[others++] = k;
    }
    if (others) sort_after_run(keys, n->sort_tmp, sorted_run(keys, others), others);
    if (in_event_data) sort_after_run(event_data, n->sort_tmp, sorted_run(event_data, in_event_data), in_event_data);
    /* the block's place: after the last entry that sorts before the prefix */
    const uint64_t prefix_key0 = rank_word(EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN, 0);
    const uint64_t prefix_key1 = rank_word(EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN, 8);
    uint32_t lo = 0, hi = in_event_data ? others : 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (before_event_data(keys[mid].e, prefix_key0, prefix_key1)) lo = mid + 1;
        else hi = mid;
    }
    struct entry **o = n->order;
    for (uint32_t i = 0; i < lo; i++) *o++ = keys[i].e;
    for (uint32_t i = 0; i < in_event_data; i++) *o++ = event_data[i].e;
    for (uint32_t i = lo; i < others; i++) *o++ = keys[i].e;
}

/* n->order[0..count) made from a remembered order (at each sorted position, the place given)
 * and checked to be the order norm_sort_entries gives: every neighbour pair strictly increasing
 * by (path, place given) — the one stable sort, as (path, place) is a total order. The order
 * given is n->entries (pushed) or the copy in n->scratch. *no_equal: no two neighbours share a
 * path. On false n->order is partly written. */
static inline __attribute__((always_inline)) bool order_apply_sorted(normalizer *n, uint32_t count, const uint8_t *order,
                                                                     bool pushed, bool *no_equal)
{
    struct entry **v = n->order;
    struct entry *const *given = n->scratch;
    /* the EventData prefix's keys: a path outside it compares with one inside by its keys
     * unless they equal the prefix's (its first 16 bytes are the prefix's) */
    const uint64_t prefix_key0 = rank_word(EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN, 0);
    const uint64_t prefix_key1 = rank_word(EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN, 8);
    bool equal = false;
    struct entry *a = pushed ? &n->entries[order[0]] : given[order[0]];
    v[0] = a;
    for (uint32_t i = 1; i < count; i++) {
        struct entry *b = pushed ? &n->entries[order[i]] : given[order[i]];
        v[i] = b;
        if (MAMORI_LIKELY(a->in_event_data == b->in_event_data)) {
            if (MAMORI_LIKELY(a->key0 != b->key0)) {
                if (a->key0 > b->key0) return false;
                a = b;
                continue;
            }
            if (a->key1 != b->key1) {
                if (a->key1 > b->key1) return false;
                a = b;
                continue;
            }
            int c = entry_cmp(a, b);
            if (c > 0 || (c == 0 && a->sort_pos > b->sort_pos)) return false;
            equal |= c == 0;
            a = b;
            continue;
        }
        /* one inside the prefix, one outside: never equal paths */
        const struct entry *out = a->in_event_data ? b : a;
        bool a_first;
        if (out->key0 != prefix_key0) a_first = (out->key0 < prefix_key0) == (out == a);
        else if (out->key1 != prefix_key1) a_first = (out->key1 < prefix_key1) == (out == a);
        else a_first = path_cmp(a->path, a->path_len, b->path, b->path_len) < 0;
        if (!a_first) return false;
        a = b;
    }
    *no_equal = !equal;
    return true;
}

/* count in 1..SORT_CACHE_ENTRIES_MAX, sort_pos set; pushed: the order given is n->entries
 * (the first round: no copy of the given order needed). */
static void sort_cached(normalizer *n, uint32_t count, uint64_t shape, bool pushed, bool *no_equal)
{
    struct entry **v = n->order, **given = n->scratch;
    struct sort_cache_slot *slot = &n->sort_cache[(shape >> 32) % SORT_CACHE_SLOTS];
    if (slot->count == count && slot->shape == shape) {
        if (pushed) {
            if (order_apply_sorted(n, count, slot->order, true, no_equal)) return;
        } else {
            memcpy(given, v, count * sizeof *v);
            if (order_apply_sorted(n, count, slot->order, false, no_equal)) return;
            memcpy(v, given, count * sizeof *v);
        }
    }
    if (pushed)
        for (uint32_t i = 0; i < count; i++) v[i] = &n->entries[i];
    norm_sort_entries(n, count);
    slot->shape = shape;
    slot->count = count;
    for (uint32_t i = 0; i < count; i++) slot->order[i] = v[i]->sort_pos;
}

uint64_t norm_order_shape(normalizer *n, uint32_t count)
{
    uint64_t shape = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct entry *e = n->order[i];
        e->sort_pos = (uint8_t)i;
        shape = (shape + e->path_hash) * NORM_SHAPE_MUL;
    }
    return shape + count;
}

void norm_sort_cached(normalizer *n, uint32_t count, uint64_t shape, bool pushed, bool *no_equal)
{
    *no_equal = false;
    if (count == 0 || count > SORT_CACHE_ENTRIES_MAX) {
        if (pushed)
            for (uint32_t i = 0; i < count; i++) n->order[i] = &n->entries[i];
        norm_sort_entries(n, count);
        return;
    }
    sort_cached(n, count, shape, pushed, no_equal);
}

static bool json_equal(const json_value *a, const json_value *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_NULL: return true;
    case JSON_BOOL: return a->num.b == b->num.b;
    case JSON_NUMBER:
        if ((a->flags & JSON_FLAG_INT) && (b->flags & JSON_FLAG_INT)) return a->num.i == b->num.i;
        return a->str && b->str && a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case JSON_STRING: return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case JSON_ARRAY:
        if (a->len != b->len) return false;
        for (uint32_t i = 0; i < a->len; i++)
            if (!json_equal(&a->items[i], &b->items[i])) return false;
        return true;
    default:
        if (a->len != b->len) return false;
        for (uint32_t i = 0; i < a->len; i++) {
            const json_member *x = &a->members[i], *y = &b->members[i];
            if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0 || !json_equal(&x->value, &y->value))
                return false;
        }
        return true;
    }
}

/* An EventData field that lost its ECS path goes back to winlog.event_data.<Field>, where
 * the detection engine looks first (docs/ecs-mapping.md, "collisions"). */
static void displace(normalizer *n, struct entry *e)
{
    size_t len = EVENT_DATA_PREFIX_LEN + e->src_len;
    char *path = norm_alloc(n, len + 1);
    memcpy(path, EVENT_DATA_PREFIX, EVENT_DATA_PREFIX_LEN);
    memcpy(path + EVENT_DATA_PREFIX_LEN, e->src_name, e->src_len);
    path[len] = '\0';
    norm_entry_set_path(e, path, len);
    e->kind = KIND_INPUT;
}

/* One pass over the sorted entries: of each group of equal paths keep one. Returns the
 * kept count in *count; *again when displaced entries need another sort and pass. */
int norm_settle(normalizer *n, uint32_t *count, bool *again)
{
    struct entry **v = n->order;
    uint32_t total = *count, out = 0;
    *again = false;
    /* most events claim no path twice: find the first pair before moving anything */
    uint32_t first = 0;
    while (first + 1 < total && !same_path(v[first], v[first + 1])) first++;
    if (first + 1 >= total) return 0;
    out = first;
    for (uint32_t i = first; i < total;) {
        uint32_t j = i + 1;
        while (j < total && same_path(v[i], v[j])) j++;
        if (j == i + 1) {
            v[out++] = v[i++];
            continue;
        }
        struct entry *by_kind[KIND_STAMP + 1] = {NULL};
        uint32_t inputs = 0;
        for (uint32_t k = i; k < j; k++) {
            struct entry *e = v[k];
            if (e->kind == KIND_INPUT) inputs++;
            if (!by_kind[e->kind] || (e->kind == KIND_MAPPED && e->prio < by_kind[e->kind]->prio)) by_kind[e->kind] = e;
        }
        struct entry *winner = by_kind[KIND_STAMP] ? by_kind[KIND_STAMP]
                               : by_kind[KIND_DERIVED] ? by_kind[KIND_DERIVED]
                               : by_kind[KIND_INPUT]   ? by_kind[KIND_INPUT]
                               : by_kind[KIND_MAPPED]  ? by_kind[KIND_MAPPED]
                                                       : by_kind[KIND_WEAK];
        if (inputs > 1 && winner->kind == KIND_INPUT) return norm_reject(n, "duplicate field", v[i]->path, v[i]->path_len);
        for (uint32_t k = i; k < j; k++) {
            struct entry *e = v[k];
            if (e == winner) {
                v[out++] = e;
                continue;
            }
            if (e->kind != KIND_MAPPED) continue; /* overwritten */
            if (winner->kind == KIND_MAPPED && e->src_len == winner->src_len &&
                memcmp(e->src_name, winner->src_name, e->src_len) == 0)
                return norm_reject(n, "duplicate field", e->src_name, e->src_len);
            if (winner->kind == KIND_INPUT && json_equal(e->value, winner->value)) continue; /* same fact twice */
            displace(n, e);
            v[out++] = e;
            *again = true;
        }
        i = j;
    }
    *count = out;
    return 0;
}

/* High bit set in each byte of w that is < 0x20, '"' or '\\'. Bytes above a flagged one
 * may be flagged falsely (borrows), the lowest flag is always right. */
static inline uint64_t escape_mask(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = w ^ (ones * '"'), bslash = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash)) & highs;
}

/* Position of the first '.' in p[from..len), or len. */
static inline size_t find_dot(const char *p, size_t from, size_t len)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = from;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t t = w ^ (ones * '.');
        uint64_t m = (t - ones) & ~t & highs;
        if (m) return i + (size_t)__builtin_ctzll(m) / 8;
    }
    while (i < len && p[i] != '.') i++;
    return i;
}

static size_t value_bound(const json_value *v)
{
    switch (v->type) {
    case JSON_STRING: return 6 * (size_t)v->len + 2;
    case JSON_NUMBER: return v->str ? v->len : 24;
    case JSON_ARRAY: {
        size_t n = 2 + v->len;
        for (uint32_t i = 0; i < v->len; i++) n += value_bound(&v->items[i]);
        return n;
    }
    case JSON_OBJECT: {
        size_t n = 2 + 2 * (size_t)v->len;
        for (uint32_t i = 0; i < v->len; i++) n += 6 * (size_t)v->members[i].key_len + 2 + value_bound(&v->members[i].value);
        return n;
    }
    default: return 5;
    }
}

/* The short escape of a byte that has one ('"' → '"', '\n' → 'n'); 0 means \u00XX. */
static const char escape_letter[256] = {['"'] = '"', ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r',
                                        ['\t'] = 't', ['\b'] = 'b', ['\f'] = 'f'};

/* Writes s quoted and escaped at o. May store up to 15 bytes past the returned end (the
 * caller reserves slack): clean blocks are copied whole. */
static char *put_string(char *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '"';
    size_t i = 0;
    while (i < len) {
        size_t avail = len - i, clean, block;
#ifdef __SSE2__
        if (avail >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                                       _mm_cmpeq_epi8(_mm_max_epu8(x, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f)));
            unsigned mask = (unsigned)_mm_movemask_epi8(bad);
            _mm_storeu_si128((__m128i *)(void *)o, x);
            clean = mask ? (size_t)__builtin_ctz(mask) : 16;
            block = 16;
        } else
#endif
        {
            uint64_t w = load_partial(s + i, MAMORI_MIN(avail, 8), 0x2020202020202020ULL);
            uint64_t m = escape_mask(w);
            memcpy(o, &w, 8);
            clean = m ? (size_t)__builtin_ctzll(m) / 8 : 8;
            block = 8;
        }
        if (clean > avail) clean = avail;
        o += clean;
        i += clean;
        if (i == len || clean == block) continue; /* no escape in this block */
        unsigned char c = (unsigned char)s[i++];
        o[0] = '\\';
        o[1] = escape_letter[c];
        if (MAMORI_LIKELY(o[1])) {
            o += 2;
            continue;
        }
        o[1] = 'u';
        o[2] = '0';
        o[3] = '0';
        o[4] = hex[c >> 4];
        o[5] = hex[c & 15];
        o += 6;
    }
    *o++ = '"';
    return o;
}

static char *put_bytes(char *o, const char *s, size_t len)
{
    memcpy(o, s, len);
    return o + len;
}

static int member_cmp(const json_member *a, const json_member *b)
{
    int c = memcmp(a->key, b->key, MAMORI_MIN(a->key_len, b->key_len));
    if (c) return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static void sort_members(const json_member **v, const json_member **tmp, uint32_t count)
{
    if (count <= 8) {
        for (uint32_t i = 1; i < count; i++) {
            const json_member *m = v[i];
            uint32_t j = i;
            while (j > 0 && member_cmp(v[j - 1], m) > 0) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = m;
        }
        return;
    }
    uint32_t half = count / 2;
    sort_members(v, tmp, half);
    sort_members(v + half, tmp + half, count - half);
    uint32_t i = 0, j = half, k = 0;
    while (i < half && j < count) tmp[k++] = member_cmp(v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < half) tmp[k++] = v[i++];
    while (j < count) tmp[k++] = v[j++];
    memcpy(v, tmp, count * sizeof *v);
}

/* Values are written as given, except that objects inside arrays get their members sorted
 * too, so equal content always gives equal bytes. */
static char *put_value(normalizer *n, char *o, const json_value *v)
{
    switch (v->type) {
    case JSON_STRING: return put_string(o, v->str, v->len);
    case JSON_NULL: return put_bytes(o, "null", 4);
    case JSON_BOOL: return v->num.b ? put_bytes(o, "true", 4) : put_bytes(o, "false", 5);
    case JSON_NUMBER:
        if (v->str) return put_bytes(o, v->str, v->len);
        if (v->flags & JSON_FLAG_INT) return o + norm_format_i64(v->num.i, o);
        return o + snprintf(o, 24, "%.17g", v->num.d);
    case JSON_ARRAY:
        *o++ = '[';
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) *o++ = ',';
            o = put_value(n, o, &v->items[i]);
        }
        *o++ = ']';
        return o;
    default: {
        const json_member **order = arena_alloc(n->arena, 2 * (size_t)v->len * sizeof *order + 1);
        for (uint32_t i = 0; i < v->len; i++) order[i] = &v->members[i];
        sort_members(order, order + v->len, v->len);
        *o++ = '{';
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) *o++ = ',';
            o = put_string(o, order[i]->key, order[i]->key_len);
            *o++ = ':';
            o = put_value(n, o, &order[i]->value);
        }
        *o++ = '}';
        return o;
    }
    }
}

/* Length of the common prefix of two paths. */
static size_t common_prefix(const struct entry *a, const struct entry *b)
{
    size_t n = MAMORI_MIN(a->path_len, b->path_len), i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a->path + i, 8);
        memcpy(&y, b->path + i, 8);
        if (x != y) return i + (size_t)__builtin_ctzll(x ^ y) / 8;
    }
    while (i < n && a->path[i] == b->path[i]) i++;
    return i;
}

/* Rebuilds nested objects from the sorted flat paths into n->out. */
void norm_write_json(normalizer *n, struct entry *const *v, uint32_t count)
{
    size_t bound = 2;
    /* per path byte: up to 6 escaped, plus 4 per segment (quotes, colon, brace) */
    for (uint32_t i = 0; i < count; i++) bound += 9 * (size_t)v[i]->path_len + 16 + value_bound(v[i]->value);
    buf *b = &n->out;
    buf_clear(b);
    buf_reserve(b, bound + 16); /* put_string's block stores may run 15 bytes ahead */
    char *o = b->data;
    *o++ = '{';
    /* Objects open below the root: seg_end[k] is where the k-th of them ends ('.') in the
     * previous path. A path has at most EVENT_MAX_PATH_BYTES / 2 dots. */
    uint32_t seg_end[EVENT_MAX_PATH_BYTES / 2 + 1];
    uint32_t depth = 0;
    const struct entry *prev = NULL;
    for (uint32_t i = 0; i < count; i++) {
        const struct entry *e = v[i];
        uint32_t common = 0;
        if (prev) {
            size_t same = common_prefix(prev, e);
            while (common < depth && seg_end[common] < same) common++;
            for (uint32_t k = common; k < depth; k++) *o++ = '}';
            *o++ = ',';
        }
        depth = common;
        uint32_t pos = common ? seg_end[common - 1] + 1 : 0;
        for (uint32_t j = (uint32_t)find_dot(e->path, pos, e->path_len); j < e->path_len;
             j = (uint32_t)find_dot(e->path, pos, e->path_len)) {
            o = put_string(o, e->path + pos, j - pos);
            *o++ = ':';
            *o++ = '{';
            MAMORI_ASSERT(depth < MAMORI_ARRAY_LEN(seg_end)); /* segments are never empty */
            seg_end[depth++] = j;
            pos = j + 1;
        }
        o = put_string(o, e->path + pos, e->path_len - pos);
        *o++ = ':';
        o = put_value(n, o, e->value);
        prev = e;
    }
    for (uint32_t k = 0; k < depth; k++) *o++ = '}';
    *o++ = '}';
    b->len = (size_t)(o - b->data);
    MAMORI_ASSERT(b->len <= bound);
}

static int bytewise_cmp(const struct entry *a, const struct entry *b)
{
    int c = memcmp(a->path, b->path, MAMORI_MIN(a->path_len, b->path_len));
    if (c) return c;
    return a->path_len < b->path_len ? -1 : a->path_len > b->path_len;
}

/* Only when some path holds a byte below '.': then bytewise order (event_get's) differs. */
void norm_sort_bytewise(struct entry **v, struct entry **tmp, uint32_t count)
{
    if (count <= 12) {
        for (uint32_t i = 1; i < count; i++) {
            struct entry *e = v[i];
            uint32_t j = i;
            while (j > 0 && bytewise_cmp(v[j - 1], e) > 0) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = e;
        }
        return;
    }
    uint32_t half = count / 2;
    norm_sort_bytewise(v, tmp, half);
    norm_sort_bytewise(v + half, tmp + half, count - half);
    uint32_t i = 0, j = half, k = 0;
    while (i < half && j < count) tmp[k++] = bytewise_cmp(v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < half) tmp[k++] = v[i++];
    while (j < count) tmp[k++] = v[j++];
    memcpy(v, tmp, count * sizeof *v);
}
