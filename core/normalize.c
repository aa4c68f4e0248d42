/* core/normalize.c — one parsed JSON event in, one mamori_event out (contract in
 * core/event.h, rules in docs/ecs-mapping.md). Every shape first becomes a list of entries
 * in per-thread scratch: this file makes entries, flattens ECS input, stamps time and
 * mamori.* and drives the rest: normalize_winlog.c splits the three winlog shapes,
 * normalize_write.c sorts, settles paths claimed twice and writes the canonical JSON. */
#include "clock.h"
#include "ecs_map.h"
#include "event.h"
#include "normalize_internal.h"

#include <errno.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

normalizer *normalizer_create(void)
{
    normalizer *n = mamori_xcalloc(1, sizeof *n);
    buf_init(&n->out);
    buf_reserve(&n->out, 4096);
    return n;
}

void normalizer_destroy(normalizer *n)
{
    if (!n) return;
    buf_fini(&n->out);
    free(n);
}

/* ---- small helpers ------------------------------------------------------------------- */

int norm_reject(normalizer *n, const char *reason, const char *path, size_t len)
{
    if (!n->err || n->err_len == 0) return -EINVAL;
    if (!path) {
        snprintf(n->err, n->err_len, "%s", reason);
        return -EINVAL;
    }
    char shown[72];
    size_t k = 0;
    for (size_t i = 0; i < len && k < sizeof shown - 4; i++) {
        unsigned char c = (unsigned char)path[i];
        shown[k++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    if (k < len) {
        memcpy(shown + k, "...", 3);
        k += 3;
    }
    shown[k] = '\0';
    snprintf(n->err, n->err_len, "%s '%s'", reason, shown);
    return -EINVAL;
}

/* The value of the k (1..8) decimal digits in the first bytes of w (byte 0 the most
 * significant): shifted up so that the bytes before them read as leading zeros, then pairs,
 * quads and octets combined by multiplication (as the JSON parser does). */
static inline uint64_t digits_value(uint64_t w, unsigned k)
{
    w = (w << (8 * (8 - k))) & 0x0F0F0F0F0F0F0F0FULL;
    w = (w * 2561) >> 8;
    w = ((w & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
    return ((w & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
}

/* Canonical decimal only ("0", "-12", no '+', no leading zeros) so text ↔ integer is 1:1.
 * Up to 8 digits (pids, ids, versions: nearly all) are checked and read a word at a time. */
static inline __attribute__((always_inline)) bool parse_decimal(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i >= len || len - i > 19) return false;
    if (s[i] == '0' && (len - i > 1 || neg)) return false;
    uint64_t mag = 0;
    if (len - i <= 8) {
        /* padded with '0' bytes: every byte must be a digit ('0'..'9', bytes below 0x80) */
        uint64_t w = load_partial(s + i, len - i, 0x3030303030303030ULL);
        const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL, highs = 0x8080808080808080ULL;
        uint64_t b = w & low7;
        uint64_t digit = (b + 0x5050505050505050ULL) & ~(b + 0x4646464646464646ULL) & ~w & highs;
        if (digit != highs) return false;
        mag = digits_value(w, (unsigned)(len - i));
    } else {
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') return false;
            mag = mag * 10 + (uint64_t)(s[i] - '0');
        }
        if (mag > (uint64_t)INT64_MAX) return false;
    }
    *out = neg ? -(int64_t)mag : (int64_t)mag;
    return true;
}

/* An integer from a JSON integer or canonical decimal text. */
bool norm_value_int(const json_value *v, int64_t *out)
{
    if (!v) return false;
    if (v->type == JSON_NUMBER && (v->flags & JSON_FLAG_INT)) {
        *out = v->num.i;
        return true;
    }
    return v->type == JSON_STRING && parse_decimal(v->str, v->len, out);
}

/* winlog values are text in every shape but evtx_dump, which types numbers and booleans:
 * make them text again so the shapes agree (mapped LONG fields become integers later). */
const json_value *norm_as_text_slow(normalizer *n, const json_value *v)
{
    if (v->type == JSON_NUMBER && v->str) return new_string(n, v->str, v->len);
    if (v->type == JSON_BOOL) return v->num.b ? new_string(n, "true", 4) : new_string(n, "false", 5);
    return v;
}

/* Canonical decimal text → an integer that keeps the text: parse_decimal accepts only the
 * text norm_format_i64 would write for it, so writers and event_field.text repeat it as is
 * instead of formatting the number again. */
const json_value *norm_as_long(normalizer *n, const json_value *v)
{
    int64_t i;
    if (v->type != JSON_STRING || !parse_decimal(v->str, v->len, &i)) return v;
    json_value *r = new_value(n, JSON_NUMBER);
    r->flags = JSON_FLAG_INT;
    r->num.i = i;
    r->str = v->str;
    r->len = v->len;
    return r;
}

/* norm_as_long(n, norm_as_text(n, v)): a JSON integer whose text is canonical decimal is
 * already what the two make of it (NXLog's numeric System fields), so it is returned as is. */
const json_value *norm_as_long_text(normalizer *n, const json_value *v)
{
    int64_t i;
    if (v->type == JSON_NUMBER && v->flags == JSON_FLAG_INT && v->reserved == 0 && v->str &&
        parse_decimal(v->str, v->len, &i) && i == v->num.i)
        return v;
    return norm_as_long(n, norm_as_text(n, v));
}

/* Decimal text of v into out (>= 21 bytes); returns the length. */
size_t norm_format_i64(int64_t v, char *out)
{
    char tmp[24];
    size_t k = 0;
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[k++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    size_t len = 0;
    if (v < 0) out[len++] = '-';
    while (k) out[len++] = tmp[--k];
    out[len] = '\0';
    return len;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* High bit of each byte of w in [lo, hi]; every byte of w must be below 0x80 (no carries). */
static inline uint64_t bytes_in_range(uint64_t w, unsigned lo, unsigned hi)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    return (w + ones * (0x80u - lo)) & ~(w + ones * (0x7fu - hi)) & highs;
}

#ifdef __SSE2__
/* Of the 16 bytes x: all-ones where a byte is a hex digit ('0'..'9', 'a'..'f', 'A'..'F'; bytes
 * >= 0x80 are negative as signed and fail every range); *upper: where it is 'A'..'F'. */
static inline __m128i hex_bytes(__m128i x, __m128i *upper)
{
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
    __m128i folded = _mm_or_si128(x, _mm_set1_epi8(0x20));
    __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8('a' - 1)), _mm_cmplt_epi8(folded, _mm_set1_epi8('f' + 1)));
    *upper = _mm_andnot_si128(_mm_cmpeq_epi8(folded, x), letter); /* a letter the fold changed */
    return _mm_or_si128(digit, letter);
}

/* The 16 bytes x match the GUID layout where dash_bits (bit i: byte i) say '-' and hex digits
 * elsewhere; their 'A'..'F' lowered into *lowered. */
static inline bool guid_block(__m128i x, unsigned dash_bits, __m128i *lowered, unsigned *upper_bits)
{
    __m128i upper;
    unsigned hex = (unsigned)_mm_movemask_epi8(hex_bytes(x, &upper));
    unsigned dash = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('-')));
    *lowered = _mm_or_si128(x, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
    *upper_bits |= (unsigned)_mm_movemask_epi8(upper);
    return ((hex & ~dash_bits) | (dash & dash_bits)) == 0xffffu;
}
#endif

/* "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}" / "5770385f-…" → "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}".
 * Checked and case-folded 16 bytes at a time (bytes 0, 16 and 20, overlapping), or without
 * SSE2 8 at a time (words at 0, 8, 16, 24 and 28). */
const json_value *norm_as_guid(normalizer *n, const json_value *v)
{
    if (!v || v->type != JSON_STRING) return v;
    const char *s = v->str;
    size_t len = v->len;
    if (len == 38 && s[0] == '{' && s[37] == '}') {
        s++;
        len = 36;
    }
    if (len != 36) return v;
#ifdef __SSE2__
    /* dashes at 8, 13 | 18, 23 (bytes 2, 7 of the second block) | 23 (byte 3 of the third) */
    __m128i lo[3];
    unsigned upper_any = 0;
    if (!guid_block(_mm_loadu_si128((const __m128i *)(const void *)s), 1u << 8 | 1u << 13, &lo[0], &upper_any) ||
        !guid_block(_mm_loadu_si128((const __m128i *)(const void *)(s + 16)), 1u << 2 | 1u << 7, &lo[1], &upper_any) ||
        !guid_block(_mm_loadu_si128((const __m128i *)(const void *)(s + 20)), 1u << 3, &lo[2], &upper_any))
        return v;
    if (v->len == 38 && !upper_any) return v; /* already canonical */
    char *o = norm_alloc(n, 38);
    o[0] = '{';
    _mm_storeu_si128((__m128i *)(void *)(o + 1), lo[0]);
    _mm_storeu_si128((__m128i *)(void *)(o + 17), lo[1]);
    _mm_storeu_si128((__m128i *)(void *)(o + 21), lo[2]);
    o[37] = '}';
    return new_string(n, o, 38);
#else
    if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return v;
    static const uint8_t offsets[5] = {0, 8, 16, 24, 28};
    /* the dashes' bytes (checked above): s[8] and s[13] in the second word, s[18] and s[23] in the third */
    static const uint64_t dashes[5] = {0, 0x0000800000000080ULL, 0x8000000000800000ULL, 0, 0};
    const uint64_t highs = 0x8080808080808080ULL;
    uint64_t w[5], upper_any = 0;
    for (size_t k = 0; k < 5; k++) {
        memcpy(&w[k], s + offsets[k], 8);
        if (w[k] & highs) return v;
        uint64_t upper = bytes_in_range(w[k], 'A', 'F');
        uint64_t hex = bytes_in_range(w[k], '0', '9') | bytes_in_range(w[k], 'a', 'f') | upper;
        if ((hex | dashes[k]) != highs) return v;
        upper_any |= upper;
        w[k] |= upper >> 2; /* 0x80 >> 2 = 0x20: 'A' → 'a' */
    }
    if (v->len == 38 && !upper_any) return v; /* already canonical */
    char *o = norm_alloc(n, 38);
    o[0] = '{';
    for (size_t k = 0; k < 5; k++) memcpy(o + 1 + offsets[k], &w[k], 8);
    o[37] = '}';
    return new_string(n, o, 38);
#endif
}

/* The 16 lower-case hex digits of x, most significant first: each 32-bit half's nibbles
 * spread to bytes, made ASCII by arithmetic on all 8 at once. */
static void hex16(uint64_t x, char out[16])
{
    for (int half = 0; half < 2; half++) {
        uint64_t v = half ? (uint32_t)x : x >> 32;
        v = (v | v << 16) & 0x0000FFFF0000FFFFULL;
        v = (v | v << 8) & 0x00FF00FF00FF00FFULL;
        v = (v | v << 4) & 0x0F0F0F0F0F0F0F0FULL; /* byte i = nibble i */
        uint64_t letters = ((v + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL; /* nibble >= 10 */
        v += 0x3030303030303030ULL + letters * (uint64_t)('a' - '0' - 10);
        v = __builtin_bswap64(v);
        memcpy(out + 8 * half, &v, 8);
    }
}

/* s[0..len) (1..16 bytes) is hex as norm_as_keywords writes it: lower case, no leading zero
 * but for "0". Checked 8 bytes at a time (the last word overlapping; short text padded with
 * '0', itself a digit). */
static bool hex_is_canonical(const char *s, size_t len)
{
    if (s[0] == '0' && len > 1) return false;
    const uint64_t highs = 0x8080808080808080ULL, zeros = 0x3030303030303030ULL;
    uint64_t words[2] = {load_partial(s, MAMORI_MIN(len, 8), zeros), len > 8 ? load_partial(s + len - 8, 8, 0) : zeros};
    for (int k = 0; k < 2; k++) {
        uint64_t w = words[k];
        if (w & highs) return false;
        if ((bytes_in_range(w, '0', '9') | bytes_in_range(w, 'a', 'f')) != highs) return false;
    }
    return true;
}

/* Keywords: an integer (NXLog prints the mask signed) or hex text → "0x…" lowercase. */
const json_value *norm_as_keywords(normalizer *n, const json_value *v)
{
    uint64_t mask = 0;
    if (v->type == JSON_NUMBER && (v->flags & JSON_FLAG_INT)) {
        mask = (uint64_t)v->num.i;
    } else if (v->type == JSON_STRING && v->len > 2 && v->len <= 18 && v->str[0] == '0' &&
               (v->str[1] == 'x' || v->str[1] == 'X')) {
        if (v->str[1] == 'x' && hex_is_canonical(v->str + 2, v->len - 2)) return v; /* what the rest would write */
        for (uint32_t i = 2; i < v->len; i++) {
            int d = hex_digit(v->str[i]);
            if (d < 0) return v;
            mask = mask << 4 | (uint64_t)d;
        }
    } else {
        return v;
    }
    char all[16];
    hex16(mask, all);
    size_t digits = mask ? (size_t)(64 - __builtin_clzll(mask) + 3) / 4 : 1;
    char *o = norm_alloc(n, 20);
    o[0] = '0';
    o[1] = 'x';
    memcpy(o + 2, all + 16 - digits, digits);
    o[2 + digits] = '\0';
    return new_string(n, o, 2 + digits);
}

/* ---- entries --------------------------------------------------------------------------- */

/* Unmapped EventData paths all share the 18-byte EVENT_DATA_PREFIX: keys of their first 16
 * bytes would tie for every pair of them, so theirs are of the bytes after the prefix. */
void norm_entry_set_path(struct entry *e, const char *path, size_t len)
{
    e->path = path;
    e->path_len = (uint32_t)len;
    size_t off = 0;
    if (len >= EVENT_DATA_PREFIX_LEN) {
        uint64_t w0, w1;
        uint16_t w2;
        memcpy(&w0, path, 8);
        memcpy(&w1, path + 8, 8);
        memcpy(&w2, path + 16, 2);
        if (w0 == UINT64_C(0x652e676f6c6e6977) /* "winlog.e" */ && w1 == UINT64_C(0x7461645f746e6576) /* "vent_dat" */ &&
            w2 == 0x2e61 /* "a." */)
            off = EVENT_DATA_PREFIX_LEN;
    }
    e->in_event_data = off != 0;
    e->path_hash = event_path_hash(path, len);
    e->flags = norm_path_flags(path, len);
    e->key0 = rank_word(path, len, off);
    e->key1 = rank_word(path, len, off + 8);
}

void norm_entry_format_int(normalizer *n, struct entry *e)
{
    char *t = norm_alloc(n, 21);
    e->text_len = (uint32_t)norm_format_i64(e->value->num.i, t);
    e->text = t;
}

void *norm_pool_refill(normalizer *n, size_t need)
{
    norm_pool_trim(n);
    size_t bytes = MAMORI_MAX(need, (size_t)NORM_POOL_BLOCK);
    char *b = arena_alloc(n->arena, bytes);
    n->pool_block = b;
    n->pool_block_bytes = bytes;
    n->pool = b + need;
    n->pool_left = bytes - need;
    return b;
}

void norm_pool_trim(normalizer *n)
{
    if (n->pool_block) arena_trim(n->arena, n->pool_block, n->pool_block_bytes, (size_t)(n->pool - n->pool_block));
    n->pool_block = NULL;
    n->pool_left = 0;
}

struct entry *norm_push_entry(normalizer *n, const char *path, size_t len, const json_value *v, enum entry_kind kind)
{
    const uint32_t index = norm_claim_entry(n);
    struct entry *e = &n->entries[index];
    e->sort_pos = (uint8_t)index;
    norm_entry_set_path(e, path, len);
    n->paths_shape = (n->paths_shape + e->path_hash) * NORM_SHAPE_MUL;
    norm_entry_fill(n, e, v, kind);
    return e;
}

/* ---- ECS input: flatten nested objects into dotted paths -------------------------------- */

static int add_leaf(normalizer *n, size_t len, const json_value *v)
{
    const char *p = n->path;
    /* The server owns mamori.*: whatever an agent sent there is dropped, never trusted. */
    if (len >= 6 && memcmp(p, "mamori", 6) == 0 && (len == 6 || p[6] == '.')) return 0;
    if (KEY_IS(p, len, "@timestamp")) {
        if (n->timestamp) return norm_reject(n, "duplicate field", p, len);
        n->timestamp = v;
        return 0;
    }
    if (n->winlogbeat && len > 7 && memcmp(p, "winlog.", 7) == 0) {
        int rc = norm_winlogbeat_leaf(n, len, v);
        if (rc) return rc < 0 ? rc : 0;
    }
    if (n->entry_count + n->event_data_count >= EVENT_MAX_FIELDS) return norm_reject(n, "too many fields", NULL, 0);
    if (v->type == JSON_STRING && v->len && ((v->str[0] >= '0' && v->str[0] <= '9') || v->str[0] == '-') &&
        ecs_map_path_type(p, len) == ECS_TYPE_LONG)
        v = norm_as_long(n, v);
    norm_push_entry(n, norm_strndup(n, p, len), len, v, KIND_INPUT);
    return 0;
}

static int flatten(normalizer *n, const json_value *obj, size_t prefix_len);

int norm_flatten_member(normalizer *n, const json_member *m, size_t prefix_len)
{
    /* Checked before writing anything: prefix_len may already be the maximum. */
    if (prefix_len + (prefix_len ? 1u : 0u) + m->key_len > EVENT_MAX_PATH_BYTES)
        return prefix_len ? norm_reject(n, "field path too long", n->path, prefix_len)
                          : norm_reject(n, "field path too long", m->key, m->key_len);
    size_t len = prefix_len;
    if (len) n->path[len++] = '.';
    /* Dots in keys are path separators; an empty segment names nothing. Most keys hold
     * no byte <= '.', which a word-at-a-time check shows. */
    const char *k = m->key;
    bool empty = m->key_len == 0;
    uint32_t j = 0;
    for (; j + 8 <= m->key_len; j += 8) {
        uint64_t w;
        memcpy(&w, k + j, 8);
        if ((w - 0x2f2f2f2f2f2f2f2fULL) & ~w & 0x8080808080808080ULL) break;
    }
    for (; j < m->key_len && !empty; j++) {
        unsigned char c = (unsigned char)k[j];
        if (c > '.') continue;
        if (c < '.') n->low_bytes = true;
        else empty = j == 0 || j + 1 == m->key_len || k[j + 1] == '.';
    }
    memcpy(n->path + len, k, m->key_len);
    len += m->key_len;
    if (empty) return norm_reject(n, "empty field name in", n->path, len);
    if (m->value.type == JSON_OBJECT) return flatten(n, &m->value, len);
    return add_leaf(n, len, &m->value);
}

static int flatten(normalizer *n, const json_value *obj, size_t prefix_len)
{
    for (uint32_t i = 0; i < obj->len; i++) {
        int rc = norm_flatten_member(n, &obj->members[i], prefix_len);
        if (rc) return rc;
    }
    return 0;
}

/* ---- time and stamps ---------------------------------------------------------------- */

static int64_t handle_time(normalizer *n, const event_stamp *stamp, bool winlog)
{
    const json_value *candidates[] = {n->timestamp, winlog ? n->ws[WS_TIME_CREATED] : NULL,
                                      winlog ? n->ws[WS_UTC_TIME] : NULL, winlog ? n->ws[WS_EVENT_TIME] : NULL};
    int64_t t = 0;
    bool parsed = false;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(candidates) && !parsed; i++) {
        const json_value *c = candidates[i];
        parsed = json_is_string(c) && clock_parse_rfc3339_memo(&n->time_memo, c->str, c->len, &t) == 0;
    }
    int64_t received = stamp->received_us;
    if (!parsed) {
        if (n->timestamp) PUSH_LIT(n, "@timestamp", n->timestamp, KIND_INPUT);
        return received;
    }
    char *text = norm_alloc(n, 28);
    size_t len = clock_format_rfc3339_memo(&n->time_memo, t, text);
    PUSH_LIT(n, "@timestamp", new_string(n, text, len), KIND_DERIVED);
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    if (stamp->max_past_us > 0 && __builtin_sub_overflow(received, stamp->max_past_us, &lo)) lo = INT64_MIN;
    if (stamp->max_future_us > 0 && __builtin_add_overflow(received, stamp->max_future_us, &hi)) hi = INT64_MAX;
    return (t >= 0 && t >= lo && t <= hi) ? t : received;
}

static void add_stamps(normalizer *n, const event_stamp *stamp)
{
    size_t tenant_len = strlen(stamp->tenant), agent_len = strlen(stamp->agent_id);
    const json_value *agent = new_string(n, norm_strndup(n, stamp->agent_id, agent_len), agent_len);
    if (n->received_us_cached != stamp->received_us || !n->received_text[0]) {
        clock_format_rfc3339(stamp->received_us, n->received_text);
        n->received_us_cached = stamp->received_us;
    }
    char *text = norm_alloc(n, 28);
    memcpy(text, n->received_text, 28);
    /* in path order: the sort passes a run in order cheaply */
    PUSH_LIT(n, "host.id", agent, KIND_WEAK);
    PUSH_LIT(n, "mamori.agent_id", agent, KIND_STAMP);
    PUSH_LIT(n, "mamori.received", new_string(n, text, 27), KIND_STAMP);
    PUSH_LIT(n, "mamori.tenant", new_string(n, norm_strndup(n, stamp->tenant, tenant_len), tenant_len),
                KIND_STAMP);
}

/* ---- the entry point ------------------------------------------------------------------- */

/* Whether y's path continues x's with a '.': x is a leaf that is also an object. */
static inline bool leaf_under(const struct entry *x, const struct entry *y)
{
    return x->path_len < y->path_len && y->path[x->path_len] == '.' && bytes_eq(x->path, y->path, x->path_len);
}

/* The field array: from this event's block when it fits, whose tail then goes back. */
static event_field *alloc_fields(normalizer *n, uint32_t count)
{
    size_t bytes = (size_t)count * sizeof(event_field) + 1;
    event_field *fields = bytes <= n->pool_left ? norm_alloc(n, bytes) : NULL;
    norm_pool_trim(n);
    return fields ? fields : arena_alloc(n->arena, bytes);
}

enum shape { SHAPE_ECS, SHAPE_EVTX, SHAPE_NXLOG, SHAPE_WINLOGBEAT };

unsigned norm_shape_key_bits(const char *k, size_t len)
{
    switch (len) {
    case 5: return memcmp(k, "Event", 5) == 0 ? SHAPE_KEY_EVENT : 0;
    case 6: return memcmp(k, "winlog", 6) == 0 ? SHAPE_KEY_WINLOG : 0;
    case 7:
        if (memcmp(k, "EventID", 7) == 0) return SHAPE_KEY_EVENT_ID;
        return memcmp(k, "Channel", 7) == 0 ? SHAPE_KEY_CHANNEL : 0;
    case 10: return memcmp(k, "SourceName", 10) == 0 ? SHAPE_KEY_CHANNEL : 0;
    default:
        if (len > 7 && memcmp(k, "winlog.", 7) == 0 &&
            (KEY_IS(k, len, "winlog.channel") || (len >= 17 && memcmp(k, "winlog.event_data", 17) == 0 && (len == 17 || k[17] == '.'))))
            return SHAPE_KEY_WINLOGBEAT;
        return 0;
    }
}

static enum shape detect_shape(const json_value *raw, enum event_format format, const json_value **evtx_event)
{
    bool event_id = false, channel = false, winlog = false;
    const json_value *event = NULL;
    for (uint32_t i = 0; i < raw->len; i++) {
        const json_member *m = &raw->members[i];
        switch (norm_shape_key_bits(m->key, m->key_len)) {
        case SHAPE_KEY_EVENT:
            if (m->value.type == JSON_OBJECT && !event) event = &m->value;
            break;
        case SHAPE_KEY_WINLOG:
            if (m->value.type == JSON_OBJECT)
                winlog = winlog || json_object_get(&m->value, "event_data", 10) || json_object_get(&m->value, "channel", 7);
            break;
        case SHAPE_KEY_EVENT_ID: event_id = true; break;
        case SHAPE_KEY_CHANNEL: channel = true; break;
        case SHAPE_KEY_WINLOGBEAT: winlog = true; break;
        default: break;
        }
    }
    if (format == EVENT_FORMAT_ECS) return SHAPE_ECS;
    const json_value *system = event ? json_object_get(event, "System", 6) : NULL;
    if (system && system->type == JSON_OBJECT) {
        *evtx_event = event;
        return SHAPE_EVTX;
    }
    if (winlog) return SHAPE_WINLOGBEAT;
    if (event_id && (channel || format == EVENT_FORMAT_WINLOG)) return SHAPE_NXLOG;
    return SHAPE_ECS;
}

int normalize_event(normalizer *n, arena *a, enum event_format format, const json_value *raw,
                    const event_stamp *stamp, uint32_t index, mamori_event *out, char *err, size_t err_len)
{
    MAMORI_ASSERT(n && a && raw && stamp && out && stamp->tenant && stamp->agent_id);
    MAMORI_ASSERT(stamp->received_us >= 0);
    n->arena = a;
    n->err = err;
    n->err_len = err_len;
    if (err && err_len) err[0] = '\0';
    n->entry_count = 0;
    n->entries_full = false;
    n->paths_shape = 0;
    n->event_data_count = 0;
    n->timestamp = NULL;
    n->low_bytes = false;
    n->winlogbeat = false;
    n->nx_shape = NULL;
    n->pool_left = 0;
    n->pool_block = NULL;
    memset(n->ws, 0, sizeof n->ws);
    memset(out, 0, sizeof *out);

    if (raw->type != JSON_OBJECT) return norm_reject(n, "event is not an object", NULL, 0);
    const json_value *evtx_event = NULL;
    enum shape shape;
    /* an NXLog event of a shape seen before: its keys decide (norm_nx_shape_lookup checks them) */
    struct nx_shape_slot *nx = format != EVENT_FORMAT_ECS ? norm_nx_shape_lookup(n, raw) : NULL;
    if (nx && (nx->nxlog_by_keys & (format == EVENT_FORMAT_WINLOG ? NX_BY_KEYS_WINLOG : NX_BY_KEYS_AUTO)))
        shape = SHAPE_NXLOG;
    else
        shape = detect_shape(raw, format, &evtx_event);
    if (shape != SHAPE_NXLOG) n->nx_shape = NULL;
    int rc = 0;
    switch (shape) {
    case SHAPE_ECS: rc = flatten(n, raw, 0); break;
    case SHAPE_EVTX: rc = norm_collect_evtx(n, raw, evtx_event); break;
    case SHAPE_NXLOG: rc = norm_collect_nxlog(n, raw); break;
    case SHAPE_WINLOGBEAT:
        n->winlogbeat = true;
        rc = flatten(n, raw, 0);
        break;
    }
    if (!rc && shape != SHAPE_ECS) rc = norm_winlog_finish(n);
    if (rc) return rc;
    int64_t ts_us = handle_time(n, stamp, shape != SHAPE_ECS);
    add_stamps(n, stamp);
    /* the last push: what the normalizer added did not fit (see ENTRY_CAP) */
    if (MAMORI_UNLIKELY(n->entries_full)) return norm_reject(n, "too many fields", NULL, 0);

    uint32_t count = n->entry_count;
    uint64_t paths_shape = n->paths_shape + count; /* the first round's norm_order_shape, folded by the pushes */
    bool again = true;
    for (int round = 0; again; round++) {
        if (round == RESOLVE_ROUNDS_MAX) return norm_reject(n, "duplicate field", n->order[0]->path, n->order[0]->path_len);
        bool no_equal;
        if (round) paths_shape = norm_order_shape(n, count);
        norm_sort_cached(n, count, paths_shape, round == 0, &no_equal);
        if (no_equal) break; /* norm_settle would keep every entry */
        rc = norm_settle(n, &count, &again);
        if (rc) return rc;
    }
    /* Neighbours in the ranked order where one path is the other's prefix and '.': a leaf that
     * is also an object. Checked while the field array is copied when that array is in the
     * ranked order (no path byte below '.') and the count is within the limit (whose rejection
     * comes second); else first, on its own. */
    const bool in_copy = !n->low_bytes && count <= EVENT_MAX_FIELDS;
    if (!in_copy) {
        for (uint32_t i = 0; i + 1 < count; i++) {
            const struct entry *x = n->order[i], *y = n->order[i + 1];
            if (leaf_under(x, y)) return norm_reject(n, "conflicting field", x->path, x->path_len);
        }
        if (count > EVENT_MAX_FIELDS) return norm_reject(n, "too many fields", NULL, 0);
    }
    event_field *fields = NULL;
    if (in_copy) {
        fields = alloc_fields(n, count);
        const struct entry *x = count ? n->order[0] : NULL;
        if (count) fields[0] = x->field;
        for (uint32_t i = 1; i < count; i++) {
            const struct entry *y = n->order[i];
            fields[i] = y->field;
            if (leaf_under(x, y)) return norm_reject(n, "conflicting field", x->path, x->path_len);
            x = y;
        }
    }
    if (!n->defer_json) {
        norm_write_json(n, n->order, count);
        if (n->out.len > UINT32_MAX) return norm_reject(n, "event too large", NULL, 0);
    }
    if (!in_copy) {
        if (n->low_bytes) norm_sort_bytewise(n->order, n->scratch, count);
        fields = alloc_fields(n, count);
        for (uint32_t i = 0; i < count; i++) fields[i] = n->order[i]->field;
    }
    out->ts_us = ts_us;
    out->index = index;
    out->field_count = count;
    out->fields = fields;
    if (n->defer_json) return 0;
    char *json = arena_alloc(a, n->out.len + 1);
    memcpy(json, n->out.data, n->out.len);
    json[n->out.len] = '\0';
    out->json = json;
    out->json_len = (uint32_t)n->out.len;
    return 0;
}

void normalizer_set_defer_json(normalizer *n, bool defer) { n->defer_json = defer; }

int normalize_event_json(normalizer *n, arena *a, mamori_event *ev, char *err, size_t err_len)
{
    MAMORI_ASSERT(ev->field_count <= ENTRY_CAP);
    n->arena = a;
    n->pool_left = 0;
    n->pool_block = NULL;
    n->err = err;
    n->err_len = err_len;
    if (err && err_len) err[0] = '\0';
    /* the fields are the entries normalize_event wrote, unique paths: sorting them again
     * gives the order it wrote them in (bytewise order differs only with low path bytes) */
    for (uint32_t i = 0; i < ev->field_count; i++) {
        struct entry *e = &n->entries[i];
        norm_entry_set_path(e, ev->fields[i].path, ev->fields[i].path_len);
        e->value = ev->fields[i].value;
        n->order[i] = e;
    }
    norm_sort_entries(n, ev->field_count);
    norm_write_json(n, n->order, ev->field_count);
    if (n->out.len > UINT32_MAX) return norm_reject(n, "event too large", NULL, 0);
    char *json = arena_alloc(a, n->out.len + 1);
    memcpy(json, n->out.data, n->out.len);
    json[n->out.len] = '\0';
    ev->json = json;
    ev->json_len = (uint32_t)n->out.len;
    return 0;
}
