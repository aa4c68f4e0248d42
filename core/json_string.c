/* core/json_string.c — JSON strings the parser cannot take in place: escapes decoded into
 * the document's arena (short escapes from the block mask, \uXXXX with surrogate pairs),
 * invalid UTF-8 replaced by U+FFFD and flagged. Out of line from json.c's member loops,
 * which take the common zero-copy string inline. */
#include "json_internal.h"

#include <string.h>

/* Length of a valid UTF-8 sequence at s (1..4), or 0 if invalid/truncated. */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (avail >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (s[2] & 0xC0) != 0x80) return 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        return (s[1] >= lo && s[1] <= hi) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        return (s[1] >= lo && s[1] <= hi) ? 4 : 0;
    }
    return 0;
}

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

#ifndef __SSE2__
/* True if any byte of w is < 0x20, '"', '\\' or >= 0x80. */
static inline bool word_needs_attention(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t lt20 = (w - ones * 0x20) & ~w;
    uint64_t quote = w ^ (ones * '"');
    uint64_t bslash = w ^ (ones * '\\');
    uint64_t zq = (quote - ones) & ~quote;
    uint64_t zb = (bslash - ones) & ~bslash;
    return ((lt20 | zq | zb) & highs) != 0 || (w & highs) != 0;
}
#endif

/* The byte a two-character escape stands for ("\\n" → '\n'); 0 for 'u' and invalid ones. */
static const char simple_escape[256] = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b',
                                        ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t'};

/* Parses a string starting at the opening quote at p->pos; t[p->pos + 1 .. i0) is known to
 * be plain ASCII (parse_string's first block). Out of line: it is large (saving and restoring
 * its registers costs more than the common string it is not needed for). */
int json_string_from(json_parser *p, size_t i0, const char **out, uint32_t *out_len, uint8_t *flags)
{
    const unsigned char *t = (const unsigned char *)p->text;
    size_t start = p->pos + 1, i = i0, end = p->len;
    *flags = 0;
    /* Fast path: no escapes and valid UTF-8 → zero copy. The block scans stop at the first
     * byte needing attention; only the last bytes of the input go word or byte at a time. */
    for (;;) {
#ifdef __SSE2__
        unsigned m = 0;
        while (i + 16 <= end && !(m = block_attention(t + i))) i += 16;
        if (m) i += (size_t)__builtin_ctz(m);
#else
        while (i + 8 <= end) {
            uint64_t w;
            memcpy(&w, t + i, 8);
            if (word_needs_attention(w)) break;
            i += 8;
        }
#endif
        if (i >= end) return json_fail(p, p->pos, "unterminated string");
        unsigned char c = t[i];
        if (c == '"') {
            if (i - start > UINT32_MAX) return json_fail(p, p->pos, "string too long");
            *out = p->text + start;
            *out_len = (uint32_t)(i - start);
            p->pos = i + 1;
            return 0;
        }
        if (c == '\\') break;
        if (c < 0x20) return json_fail(p, i, "control character in string");
        if (c >= 0x80) {
            size_t n = utf8_sequence(t + i, end - i);
            if (!n) break; /* invalid: needs a copy with replacement */
            i += n;
            continue;
        }
        i++;
    }
    /* Slow path: decode into the arena. Output is at most the raw length, except that
     * each invalid byte (1 byte) becomes U+FFFD (3 bytes); grow when that happens. */
    size_t cap = (end - start) < 256 ? (end - start) + 16 : 256;
    char *o = arena_alloc(p->arena, cap);
    size_t olen = i - start;
    if (olen + 16 > cap) {
        o = arena_grow(p->arena, o, cap, olen + 64);
        cap = olen + 64;
    }
#ifdef __SSE2__
    if (i + 16 <= end) { /* the clean prefix by blocks: reads stay before t[i + 16], writes before o[olen + 16] */
        for (size_t k = 0; k < olen; k += 16)
            _mm_storeu_si128((__m128i *)(void *)(o + k), _mm_loadu_si128((const __m128i *)(const void *)(t + start + k)));
    } else
#endif
    {
        memcpy(o, t + start, olen);
    }
    for (;;) {
        if (cap - olen < 32) {
            size_t ncap = cap * 2;
            o = arena_grow(p->arena, o, cap, ncap);
            cap = ncap;
        }
        /* Copy clean blocks at once: escaped text (Windows paths) is mostly plain. A block is
         * stored whole and the output advanced by its clean prefix (cap - olen >= 32). The
         * short escapes inside a block (`\\`, `\r\n`…) are decoded from the block's mask:
         * the next one is found by shifting the mask, not by loading and comparing again,
         * and the rest of the block is stored again behind the decoded byte. */
#ifdef __SSE2__
        /* One bound per block, lim: a block starts at least 32 bytes before the input's end
         * (so the block, the byte after an escape and a block stored again behind an escape
         * are all inside the input: no bound checks per escape) and while the output keeps
         * 32 bytes of room (it grows no faster than the input is consumed here). The input's
         * last bytes go one at a time below. */
        size_t lim = 0, room = cap - olen;
        bool blocks = end >= 32 && room >= 32;
        if (blocks) lim = end - 32 < i + (room - 32) ? end - 32 : i + (room - 32);
        while (blocks && i <= lim) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(t + i));
            unsigned m = block_attention_x(x);
            _mm_storeu_si128((__m128i *)(void *)(o + olen), x);
            if (!m) {
                olen += 16;
                i += 16;
                continue;
            }
            size_t block_end = i + 16; /* m covers t[i..block_end), bit 0 = t[i] */
            for (;;) {
                unsigned k = (unsigned)__builtin_ctz(m);
                olen += k;
                i += k;
                char decoded;
                if (t[i] != '\\' || !(decoded = simple_escape[t[i + 1]])) goto attention;
                o[olen++] = decoded; /* olen grew by at most i did since the check: room stays */
                i += 2;
                if (i >= block_end) break;
                m >>= k + 2; /* k + 2 < 16 here */
                _mm_storeu_si128((__m128i *)(void *)(o + olen), _mm_loadu_si128((const __m128i *)(const void *)(t + i)));
                if (!m) {
                    olen += block_end - i;
                    i = block_end;
                    break;
                }
            }
        }
#else
        while (i + 8 <= end && cap - olen >= 16) {
            uint64_t w;
            memcpy(&w, t + i, 8);
            if (word_needs_attention(w)) break;
            memcpy(o + olen, &w, 8);
            olen += 8;
            i += 8;
        }
#endif
#ifdef __SSE2__
    attention:
#endif
        if (cap - olen < 32) continue;
        if (i >= end) return json_fail(p, p->pos, "unterminated string");
        unsigned char c = t[i];
        if (c == '"') {
            i++;
            break;
        }
        if (c == '\\') {
            if (i + 1 >= end) return json_fail(p, i, "unterminated escape");
            unsigned char e = t[i + 1];
            i += 2;
            /* Windows paths escape every backslash: that one first, then the table. */
            if (MAMORI_LIKELY(e == '\\')) {
                o[olen++] = '\\';
                continue;
            }
            if (simple_escape[e]) {
                o[olen++] = simple_escape[e];
                continue;
            }
            switch (e) {
            case 'u': {
                uint32_t cp;
                if (i + 4 > end || hex4(p->text + i, &cp)) return json_fail(p, i - 2, "bad \\u escape");
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (i + 6 <= end && t[i] == '\\' && t[i + 1] == 'u' && !hex4(p->text + i + 2, &lo) &&
                        lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    } else {
                        cp = 0xFFFD;
                        *flags |= JSON_FLAG_REPLACED;
                    }
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    cp = 0xFFFD;
                    *flags |= JSON_FLAG_REPLACED;
                }
                olen += put_utf8(o + olen, cp);
                break;
            }
            default:
                return json_fail(p, i - 2, "bad escape in string");
            }
            continue;
        }
        if (c < 0x20) return json_fail(p, i, "control character in string");
        if (c < 0x80) {
            o[olen++] = (char)c;
            i++;
            continue;
        }
        size_t n = utf8_sequence(t + i, end - i);
        if (n) {
            if (cap - olen < n + 8) {
                o = arena_grow(p->arena, o, cap, cap * 2);
                cap *= 2;
            }
            memcpy(o + olen, t + i, n);
            olen += n;
            i += n;
        } else {
            olen += put_utf8(o + olen, 0xFFFD);
            *flags |= JSON_FLAG_REPLACED;
            i++;
        }
    }
    if (olen > UINT32_MAX) return json_fail(p, p->pos, "string too long");
    o = arena_grow(p->arena, o, cap, olen ? olen : 1); /* give back the unused tail */
    *out = o;
    *out_len = (uint32_t)olen;
    p->pos = i;
    return 0;
}

/* A member's key beyond string_fast; json_member has no flags, so the key's are dropped
 * (as they always were). */
int json_key_from(json_parser *p, size_t pos, size_t resume, json_member *m)
{
    uint8_t flags;
    p->pos = pos;
    return json_string_from(p, resume, &m->key, &m->key_len, &flags);
}
