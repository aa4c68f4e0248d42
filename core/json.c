/* core/json.c — the JSON parser behind every event, frame payload, config fragment and API
 * body: structure, numbers and the common (zero-copy) string inline; strings needing a copy
 * in json_string.c, the writer in json_write.c. Strict about structure, lenient about bad
 * UTF-8 (replaced). */
#include "json_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_parser *json_parser_create(void)
{
    json_parser *p = mamori_xcalloc(1, sizeof *p);
    p->cap = 256;
    p->stack = mamori_xmalloc(p->cap * sizeof *p->stack);
    return p;
}

void json_parser_destroy(json_parser *p)
{
    if (!p) return;
    free(p->stack);
    free(p);
}

int json_fail(json_parser *p, size_t at, const char *msg)
{
    if (p->err) {
        p->err->offset = at;
        snprintf(p->err->msg, sizeof p->err->msg, "%s", msg);
    }
    return -EINVAL;
}

/* Whitespace between tokens is rare in events: the member loops test one byte against ' '
 * and call this only when it is at or below (out of line: it keeps its constants out of the
 * loops' registers). */
static __attribute__((noinline)) size_t skip_ws_at(const char *t, size_t pos, size_t end)
{
    while (pos < end && (unsigned char)t[pos] <= ' ') {
        char c = t[pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
        pos++;
    }
    return pos;
}

static inline void skip_ws(json_parser *p) { p->pos = skip_ws_at(p->text, p->pos, p->len); }

/* The common string, inline: keys and short values that end within the first 16-byte blocks,
 * with no escape or non-ASCII byte before the closing quote (zero copy). The opening quote is
 * at text[*pos]; on success *pos moves past the closing one. Otherwise returns false with
 * *resume where json_string_from continues (the callers call it in their unlikely branch, so
 * that its arguments are not computed on the common path). */
static inline __attribute__((always_inline)) bool string_fast(const char *text, size_t end, size_t *pos,
                                                              const char **out, uint32_t *out_len, size_t *resume)
{
    size_t i = *pos + 1;
#ifdef __SSE2__
    const unsigned char *t = (const unsigned char *)text;
    size_t start = i;
    unsigned m = 0;
    while (i + 16 <= end && !(m = block_attention(t + i))) i += 16;
    if (!m && i < end && end >= 16) /* the input's last bytes: its last block, shifted down to t[i] */
        m = block_attention(t + end - 16) >> (16 - (end - i));
    if (m) {
        i += (size_t)__builtin_ctz(m);
        /* a string is shorter than the input: only inputs over 4 GiB need the length test */
        if (MAMORI_LIKELY(t[i] == '"' && (end <= UINT32_MAX || i - start <= UINT32_MAX))) {
            *out = text + start;
            *out_len = (uint32_t)(i - start);
            *pos = i + 1;
            return true;
        }
    }
#else
    (void)text, (void)end, (void)out, (void)out_len; /* word-at-a-time scans are all out of line */
#endif
    *resume = i;
    return false;
}

/* Any number at p->pos, exactly: int64 when it is an integer that fits, else a double by
 * strtod; the text is kept. number_at's fast path gives the same values for the integers it
 * takes. */
static __attribute__((noinline)) int parse_number(json_parser *p, json_value *v)
{
    const char *t = p->text;
    size_t i = p->pos, end = p->len, start = i;
    bool neg = false, is_int = true;
    uint64_t mag = 0;
    bool overflow = false;
    if (t[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= end) return json_fail(p, start, "bad number");
    if (t[i] == '0') {
        i++;
    } else if (t[i] >= '1' && t[i] <= '9') {
        while (i < end && t[i] >= '0' && t[i] <= '9') {
            unsigned d = (unsigned)(t[i] - '0');
            if (mag > (UINT64_MAX - d) / 10) overflow = true;
            else mag = mag * 10 + d;
            i++;
        }
    } else {
        return json_fail(p, start, "bad number");
    }
    if (i < end && t[i] == '.') {
        is_int = false;
        i++;
        size_t s = i;
        while (i < end && t[i] >= '0' && t[i] <= '9') i++;
        if (i == s) return json_fail(p, start, "bad number: no digits after '.'");
    }
    if (i < end && (t[i] == 'e' || t[i] == 'E')) {
        is_int = false;
        i++;
        if (i < end && (t[i] == '+' || t[i] == '-')) i++;
        size_t s = i;
        while (i < end && t[i] >= '0' && t[i] <= '9') i++;
        if (i == s) return json_fail(p, start, "bad number: no digits in exponent");
    }
    size_t n = i - start;
    if (n > JSON_MAX_NUMBER_CHARS) return json_fail(p, start, "number too long");
    v->type = JSON_NUMBER;
    v->flags = 0;
    v->reserved = 0;
    v->str = t + start;
    v->len = (uint32_t)n;
    if (is_int && !overflow && (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX)) {
        v->flags = JSON_FLAG_INT;
        v->num.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        if (neg && mag == (uint64_t)INT64_MAX + 1) v->num.i = INT64_MIN;
    } else {
        char tmp[JSON_MAX_NUMBER_CHARS + 1];
        memcpy(tmp, t + start, n);
        tmp[n] = '\0';
        v->num.d = strtod(tmp, NULL);
    }
    p->pos = i;
    return 0;
}

/* Bit 7 of byte k set when byte k of w is '0'..'9' (SWAR, no carries between bytes: the
 * additions see 7-bit values). */
static inline uint64_t digit_bits(uint64_t w)
{
    const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL, highs = 0x8080808080808080ULL;
    uint64_t b = w & low7;
    return (b + 0x5050505050505050ULL) & ~(b + 0x4646464646464646ULL) & ~w & highs; /* >= '0', < ':' */
}

/* The value of the k (1..8) decimal digits in the first bytes of w (byte 0 the most
 * significant): shifted up so that the bytes before them read as leading zeros, then
 * pairs, quads and octets combined by multiplication. */
static inline uint64_t digits_value(uint64_t w, unsigned k)
{
    w = (w << (8 * (8 - k))) & 0x0F0F0F0F0F0F0F0FULL;
    w = (w * 2561) >> 8;
    w = ((w & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
    return ((w & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
}

static const uint64_t pow10_u64[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

/* Bit 7 of each byte of w that is not '0'..'9'. */
static inline uint64_t nondigit_bits(uint64_t w) { return ~digit_bits(w) & 0x8080808080808080ULL; }

/* Leading digits of the 8 bytes at t, 0..8. */
static inline unsigned leading_digits(uint64_t w)
{
    uint64_t nondigit = nondigit_bits(w);
    return nondigit ? (unsigned)__builtin_ctzll(nondigit) >> 3 : 8;
}

/* Sets v to the integer text t[start..end_at) of value mag (sign at t[start] if neg). */
static inline __attribute__((always_inline)) void set_int(json_value *v, const char *t, size_t start, size_t end_at,
                                                          bool neg, uint64_t mag)
{
    v->type = JSON_NUMBER;
    v->flags = JSON_FLAG_INT;
    v->reserved = 0;
    v->len = (uint32_t)(end_at - start);
    v->str = t + start;
    v->num.i = neg ? (int64_t)(0 - mag) : (int64_t)mag; /* 0 - 2^63 converts to INT64_MIN */
}

/* Parses the number at t[*pos] into v. The common case — an integer of 1 to 19 digits
 * (no leading zero) that fits int64, followed by a byte that continues no number — is read
 * 8 digits at a time; everything else (fractions, exponents, 20 or more digits, values
 * beyond int64, numbers within 24 bytes of the input's end, errors) goes to parse_number,
 * which gives the same values for the integers this path takes. Up to 7 digits (most
 * numbers in events) the first word holds the byte after them and the value needs no range
 * check. */
static inline __attribute__((always_inline)) int number_at(json_parser *p, const char *t, size_t end, size_t *pos,
                                                           json_value *v)
{
    size_t start = *pos;
    bool neg = t[start] == '-';
    size_t i = start + neg;
    /* the words are read with their first byte lowest; three words readable */
    if (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && MAMORI_LIKELY(end - i >= 24)) {
        uint64_t w;
        memcpy(&w, t + i, 8);
        uint64_t nondigit = nondigit_bits(w);
        if (MAMORI_LIKELY(nondigit && !(nondigit & 0x80))) { /* 1 to 7 digits */
            unsigned k = (unsigned)__builtin_ctzll(nondigit) >> 3;
            char next = (char)(w >> (8 * k));
            if (MAMORI_LIKELY(((char)w != '0' || k == 1) && next != '.' && (next | 0x20) != 'e')) {
                set_int(v, t, start, i + k, neg, digits_value(w, k));
                *pos = i + k;
                return 0;
            }
            goto slow;
        }
        if (nondigit) goto slow; /* no digit first */
        if (MAMORI_UNLIKELY(t[i] == '0')) goto slow; /* leading zero */
        uint64_t mag = digits_value(w, 8);
        unsigned n = 8;
        memcpy(&w, t + i + 8, 8);
        unsigned k = leading_digits(w);
        n += k;
        if (k) mag = mag * pow10_u64[k] + digits_value(w, k);
        if (k == 8) {
            memcpy(&w, t + i + 16, 8);
            k = leading_digits(w);
            n += k;
            if (k > 3) goto slow; /* 20 digits or more */
            if (k) mag = mag * pow10_u64[k] + digits_value(w, k);
        }
        char next = t[i + n]; /* a non-digit inside the words read */
        if (MAMORI_LIKELY(next != '.' && (next | 0x20) != 'e' && mag <= (uint64_t)INT64_MAX + neg)) {
            set_int(v, t, start, i + n, neg, mag);
            *pos = i + n;
            return 0;
        }
    }
slow:
    p->pos = start;
    int rc = parse_number(p, v);
    *pos = p->pos;
    return rc;
}

/* Parses the scalar starting at t[*pos] (*pos < end, not whitespace) into v, writing every
 * field, and moves *pos past it; returns 1, parsing nothing, at a container's '{' or '['. */
static inline __attribute__((always_inline)) int scalar_at(json_parser *p, const char *t, size_t end, size_t *pos,
                                                           json_value *v)
{
    char c = t[*pos];
    if (c == '"') {
        v->type = JSON_STRING;
        v->reserved = 0;
        v->num.i = 0;
        size_t resume;
        if (MAMORI_LIKELY(string_fast(t, end, pos, &v->str, &v->len, &resume))) {
            v->flags = 0;
            return 0;
        }
        p->pos = *pos;
        int rc = json_string_from(p, resume, &v->str, &v->len, &v->flags);
        *pos = p->pos;
        return rc;
    }
    if ((unsigned char)(c - '0') < 10 || c == '-') return number_at(p, t, end, pos, v);
    size_t n;
    switch (c) {
    case '{':
    case '[': return 1;
    case 't':
        if (end - *pos < 4 || memcmp(t + *pos, "true", 4) != 0) return json_fail(p, *pos, "invalid literal");
        v->type = JSON_BOOL;
        v->num.i = 0;
        v->num.b = true;
        n = 4;
        break;
    case 'f':
        if (end - *pos < 5 || memcmp(t + *pos, "false", 5) != 0) return json_fail(p, *pos, "invalid literal");
        v->type = JSON_BOOL;
        v->num.i = 0;
        n = 5;
        break;
    case 'n':
        if (end - *pos < 4 || memcmp(t + *pos, "null", 4) != 0) return json_fail(p, *pos, "invalid literal");
        v->type = JSON_NULL;
        v->num.i = 0;
        n = 4;
        break;
    default: return json_fail(p, *pos, "unexpected character");
    }
    v->flags = 0;
    v->reserved = 0;
    v->len = 0;
    v->str = NULL;
    *pos += n;
    return 0;
}

static int parse_object(json_parser *p, json_value *v);
static int parse_array(json_parser *p, json_value *v);

/* Parses the container at p->pos into v (every field written). */
static inline int parse_container(json_parser *p, json_value *v)
{
    return p->text[p->pos] == '{' ? parse_object(p, v) : parse_array(p, v);
}

/* A nested object or array as the value of the member slot *m: parsed by recursion, which
 * uses the stack above the slot and may move it (grow), so the caller's loop pointers are
 * refreshed. Inline: the loop's locals stay in registers. */
static inline __attribute__((always_inline)) int nested_value(json_parser *p, size_t *pos, json_member **stack,
                                                               json_member **limit, json_member **m)
{
    json_value child;
    size_t slot = (size_t)(*m - *stack);
    p->pos = *pos;
    p->top = slot + 1;
    int rc = parse_container(p, &child);
    if (rc) return rc;
    *pos = p->pos;
    *stack = p->stack; /* moved if it grew */
    *limit = *stack + p->cap;
    *m = *stack + slot;
    (*m)->value = child;
    return 0;
}

/* Doubles the stack; returns it. */
static __attribute__((noinline)) json_member *stack_grow(json_parser *p)
{
    p->cap *= 2;
    p->stack = mamori_xrealloc(p->stack, p->cap * sizeof *p->stack);
    return p->stack;
}

/* The object at p->pos. The member loop keeps the position, the stack top and the text in
 * locals (the parser's fields are written back only around calls) and expects the common
 * flat shape — key, ':', scalar, ',' with no whitespace — testing for whitespace with one
 * compare per gap. A scalar is parsed straight into its stack slot (copying a json_value
 * just written field by field stalls on store forwarding); a container may move the stack,
 * so it is parsed aside and copied. */
static int parse_object(json_parser *p, json_value *v)
{
    const char *t = p->text;
    size_t end = p->len, open_at = p->pos;
    if (++p->depth > JSON_MAX_DEPTH) return json_fail(p, open_at, "nesting too deep");
    size_t base = p->top;
    json_member *stack = p->stack, *m = stack + base, *limit = stack + p->cap; /* m: the next slot */
    size_t pos = open_at + 1;
    if (MAMORI_UNLIKELY(pos < end && (unsigned char)t[pos] <= ' ')) pos = skip_ws_at(t, pos, end);
    if (pos < end && t[pos] == '}') {
        pos++;
    } else {
        for (;;) {
            if (MAMORI_UNLIKELY(pos >= end || t[pos] != '"')) {
                pos = skip_ws_at(t, pos, end);
                if (pos >= end || t[pos] != '"')
                    return json_fail(p, pos, pos >= end ? "unterminated object" : "expected string key");
            }
            /* The key goes straight into its slot. */
            if (MAMORI_UNLIKELY(m == limit)) {
                size_t top = (size_t)(m - stack);
                stack = stack_grow(p);
                m = stack + top;
                limit = stack + p->cap;
            }
            size_t resume;
            int rc;
            if (MAMORI_UNLIKELY(!string_fast(t, end, &pos, &m->key, &m->key_len, &resume))) {
                rc = json_key_from(p, pos, resume, m);
                if (rc) return rc;
                pos = p->pos;
            }
            if (MAMORI_UNLIKELY(pos >= end || t[pos] != ':')) {
                pos = skip_ws_at(t, pos, end);
                if (pos >= end || t[pos] != ':') return json_fail(p, pos, "expected ':'");
            }
            pos++;
            if (MAMORI_UNLIKELY(pos >= end || (unsigned char)t[pos] <= ' ')) {
                pos = skip_ws_at(t, pos, end);
                if (pos >= end) return json_fail(p, pos, "unexpected end of input");
            }
            rc = scalar_at(p, t, end, &pos, &m->value);
            if (MAMORI_UNLIKELY(rc)) {
                if (rc < 0) return rc;
                rc = nested_value(p, &pos, &stack, &limit, &m);
                if (rc) return rc;
            }
            m++;
            if (MAMORI_UNLIKELY(pos >= end || t[pos] != ',')) {
                pos = skip_ws_at(t, pos, end);
                if (pos >= end) return json_fail(p, open_at, "unterminated object");
                if (t[pos] == '}') {
                    pos++;
                    break;
                }
                if (t[pos] != ',') return json_fail(p, pos, "expected ',' or '}'");
            }
            pos++; /* whitespace after ',' is skipped at the loop's top */
        }
    }
    size_t count = (size_t)(m - stack) - base;
    if (count > UINT32_MAX) return json_fail(p, open_at, "too many elements");
    v->type = JSON_OBJECT;
    v->flags = 0;
    v->reserved = 0;
    v->len = (uint32_t)count;
    v->members = count ? arena_memdup(p->arena, stack + base, count * sizeof(json_member)) : NULL;
    v->num.i = 0;
    p->pos = pos;
    p->top = base;
    p->depth--;
    return 0;
}

/* The array at p->pos, as parse_object without keys; items are copied out of the stack's
 * members. */
static int parse_array(json_parser *p, json_value *v)
{
    const char *t = p->text;
    size_t end = p->len, open_at = p->pos;
    if (++p->depth > JSON_MAX_DEPTH) return json_fail(p, open_at, "nesting too deep");
    size_t base = p->top;
    json_member *stack = p->stack, *m = stack + base, *limit = stack + p->cap; /* m: the next slot */
    size_t pos = open_at + 1;
    if (MAMORI_UNLIKELY(pos < end && (unsigned char)t[pos] <= ' ')) pos = skip_ws_at(t, pos, end);
    if (pos < end && t[pos] == ']') {
        pos++;
    } else {
        for (;;) {
            if (MAMORI_UNLIKELY(pos >= end || (unsigned char)t[pos] <= ' ')) {
                pos = skip_ws_at(t, pos, end);
                if (pos >= end) return json_fail(p, pos, "unexpected end of input");
            }
            if (MAMORI_UNLIKELY(m == limit)) {
                size_t top = (size_t)(m - stack);
                stack = stack_grow(p);
                m = stack + top;
                limit = stack + p->cap;
            }
            int rc = scalar_at(p, t, end, &pos, &m->value);
            if (MAMORI_UNLIKELY(rc)) {
                if (rc < 0) return rc;
                rc = nested_value(p, &pos, &stack, &limit, &m);
                if (rc) return rc;
            }
            m++;
            if (MAMORI_UNLIKELY(pos >= end || t[pos] != ',')) {
                pos = skip_ws_at(t, pos, end);
                if (pos >= end) return json_fail(p, open_at, "unterminated array");
                if (t[pos] == ']') {
                    pos++;
                    break;
                }
                if (t[pos] != ',') return json_fail(p, pos, "expected ',' or ']'");
            }
            pos++; /* whitespace after ',' is skipped at the loop's top */
        }
    }
    size_t count = (size_t)(m - stack) - base;
    if (count > UINT32_MAX) return json_fail(p, open_at, "too many elements");
    v->type = JSON_ARRAY;
    v->flags = 0;
    v->reserved = 0;
    v->len = (uint32_t)count;
    v->items = NULL;
    v->num.i = 0;
    if (count) {
        v->items = arena_alloc(p->arena, count * sizeof(json_value));
        for (size_t k = 0; k < count; k++) v->items[k] = stack[base + k].value;
    }
    p->pos = pos;
    p->top = base;
    p->depth--;
    return 0;
}

static int parse_value(json_parser *p, json_value *v)
{
    const char *t = p->text;
    size_t end = p->len, pos = skip_ws_at(t, p->pos, end);
    if (pos >= end) return json_fail(p, pos, "unexpected end of input");
    int rc = scalar_at(p, t, end, &pos, v);
    p->pos = pos;
    if (rc <= 0) return rc;
    return parse_container(p, v);
}

static void begin(json_parser *p, arena *a, const char *text, size_t len, size_t pos, json_error *err)
{
    p->arena = a;
    p->text = text;
    p->len = len;
    p->pos = pos;
    p->depth = 0;
    p->top = 0;
    p->err = err;
}

int json_parse(json_parser *p, arena *a, const char *text, size_t len, json_value *out, json_error *err)
{
    begin(p, a, text, len, 0, err);
    int rc = parse_value(p, out);
    if (rc) return rc;
    skip_ws(p);
    if (p->pos != p->len) return json_fail(p, p->pos, "trailing characters after value");
    return 0;
}

int json_parse_next(json_parser *p, arena *a, const char *text, size_t len, size_t *pos, json_value *out,
                    json_error *err)
{
    begin(p, a, text, len, *pos, err);
    skip_ws(p);
    if (p->pos >= p->len) {
        *pos = p->pos;
        return -ENODATA;
    }
    int rc = parse_value(p, out);
    if (rc) return rc;
    *pos = p->pos;
    return 0;
}

const json_value *json_object_get(const json_value *obj, const char *key, size_t key_len)
{
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (uint32_t i = 0; i < obj->len; i++) {
        const json_member *m = &obj->members[i];
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) return &m->value;
    }
    return NULL;
}
