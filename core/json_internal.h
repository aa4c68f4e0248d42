/* core/json_internal.h — private to the JSON parser's files (json.c, json_string.c): the
 * parser's state, its error helper, and the 16-byte block test both scans share. */
#ifndef MAMORI_CORE_JSON_INTERNAL_H
#define MAMORI_CORE_JSON_INTERNAL_H

#include "json.h"

#include <stddef.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct json_parser {
    json_member *stack; /* children of the containers being parsed */
    size_t top;
    size_t cap;
    /* per-document state */
    arena *arena;
    const char *text;
    size_t len;
    size_t pos;
    unsigned depth;
    json_error *err;
};

/* Records msg at byte offset `at` in the caller's json_error (if any); returns -EINVAL. */
int json_fail(json_parser *p, size_t at, const char *msg);

#ifdef __SSE2__
/* Bit k set when byte k of the 16 at s needs attention: '"', '\\', < 0x20 or >= 0x80 (as
 * json_string.c's word_needs_attention). The last two are one signed saturating
 * subtraction: x - 0x20 is negative exactly for the bytes below 0x20 and for those >= 0x80
 * (negative as signed), and the mask reads only each byte's sign bit (one instruction less
 * than compare-less-than). */
static inline unsigned block_attention_x(__m128i x)
{
    __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                               _mm_subs_epi8(x, _mm_set1_epi8(0x20)));
    return (unsigned)_mm_movemask_epi8(bad);
}

static inline unsigned block_attention(const unsigned char *s)
{
    return block_attention_x(_mm_loadu_si128((const __m128i *)(const void *)s));
}
#endif

/* json_string.c: the string whose opening quote is at p->pos, t[p->pos + 1 .. i0) known to
 * be plain ASCII: escapes decoded into the arena, invalid UTF-8 replaced; p->pos moves past
 * the closing quote. */
int json_string_from(json_parser *p, size_t i0, const char **out, uint32_t *out_len, uint8_t *flags);
/* A member's key beyond json.c's inline scan (resume: where that scan stopped). */
int json_key_from(json_parser *p, size_t pos, size_t resume, json_member *m);

#endif
