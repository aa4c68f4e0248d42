/* detect/textcmp.h — comparing a value's bytes with a literal kept ASCII case folded (literal
 * sets, literal.c; lazy answers, lazy.c), a word at a time. Internal to detect/ (ascii_fold:
 * internal.h). */
#ifndef MAMORI_DETECT_TEXTCMP_H
#define MAMORI_DETECT_TEXTCMP_H

#include "internal.h"

#include <string.h>

/* ASCII lowercase of 8 bytes at once (bytes ≥ 0x80 unchanged). */
static inline uint64_t fold8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t low7 = x & ~high;
    uint64_t ge_a = low7 + ones * (0x80 - 'A');     /* high bit: byte ≥ 'A' */
    uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1); /* high bit: byte > 'Z' */
    uint64_t upper = ge_a & ~gt_z & ~x & high;
    return x | (upper >> 2);
}

/* Whether the len bytes at s are lit's (ASCII case folded first unless cased: a caseless
 * literal is kept folded), a word at a time: a candidate the filters let through mostly
 * differs within its first 8 bytes. */
static inline bool lit_equal(const char *s, const char *lit, uint32_t len, bool cased)
{
    if (len < 8) {
        for (uint32_t i = 0; i < len; i++) {
            uint8_t c = (uint8_t)s[i];
            if ((cased ? c : ascii_fold(c)) != (uint8_t)lit[i]) return false;
        }
        return true;
    }
    uint64_t a, b;
    for (uint32_t k = 0;; k += 8) {
        if (k + 8 > len) k = len - 8; /* the last word overlaps the one before */
        memcpy(&a, s + k, sizeof a);
        memcpy(&b, lit + k, sizeof b);
        if ((cased ? a : fold8(a)) != b) return false;
        if (k + 8 == len) return true;
    }
}

#endif
