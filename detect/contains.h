/* detect/contains.h — the substring filter of literal sets (literal.c builds it,
 * contains_scan.c runs it): `contains` literals found without Hyperscan. Internal to detect/. */
#ifndef MAMORI_DETECT_CONTAINS_H
#define MAMORI_DETECT_CONTAINS_H

#include "internal.h"

#define LIT_BUCKETS 8
/* Distinct filter pairs a substring filter holds: more than LIT_BUCKETS share buckets (grouped
 * by first byte), as in Teddy: a bucket's bits then also flag the cross combinations of its
 * pairs' nibbles, which verification sorts out. */
#define LIT_PAIRS_MAX 32

/* Unanchored literals (`contains`): each is filed under its rarest pair of adjacent bytes
 * (case folded), one bucket per distinct pair (at most 8). A value is filtered many positions
 * at a time, Teddy-style: the bucket bits of the byte at each position and of the next byte
 * are looked up and ANDed; only positions left with a bit are verified against the bucket's
 * literals. The lookups: by nibble (pshufb, 32 positions a step) with AVX2; in one 128-entry
 * table (vpermi2b, 64 positions a step) with AVX-512 VBMI; `first`/`second`, the exact
 * per-byte tables, on the scalar path. */
struct lit_contains_entry {
    const char *text; /* folded when caseless */
    uint32_t len;
    uint32_t id;
    uint32_t pair; /* offset of the filtered pair in the literal */
    bool cased;
    /* The literal's 8 bytes from WIN_BEFORE before its pair, as the window of a candidate
     * position holds them (contains_verify), those outside the literal masked off: one
     * compare rejects most candidates before the literal is compared in full. */
    uint64_t win, win_mask;
};
#define WIN_BEFORE 3

struct lit_contains {
    uint8_t path; /* enum contains_path */
    uint32_t count;
    struct lit_contains_entry *entries; /* grouped by bucket, and in a bucket by filter pair */
    /* the distinct filter pairs (folded, first | second << 8), bucket b's from
     * bucket_pair[b] on; pair k's entries from pair_first[k] on */
    uint8_t bucket_pair[LIT_BUCKETS + 1];
    uint8_t pair_first[LIT_PAIRS_MAX + 1];
    uint16_t pair_key[LIT_PAIRS_MAX];
    /* first/second folded to 128 entries (vpermi2b reads a byte's low 7 bits: a byte >= 0x80
     * takes the bits of both bytes it stands for, so no candidate is lost) */
    uint8_t first7[128], second7[128];
    uint8_t lo0[16], hi0[16], lo1[16], hi1[16];
    uint8_t first[256], second[256];
};

/* The pair at t[off], folded: first | second << 8 (how the filter files it). */
static inline uint16_t folded_pair(const uint8_t *t, size_t off)
{
    return (uint16_t)(ascii_fold(t[off]) | ascii_fold(t[off + 1]) << 8);
}

/* The scan paths, slowest first. contains_finish gives a filter the fastest the CPU has, up
 * to contains_path_max (CONTAINS_VBMI; the unit tests lower it to run the others too). */
enum contains_path { CONTAINS_SCALAR, CONTAINS_AVX2, CONTAINS_VBMI };
extern enum contains_path contains_path_max;

/* Sets the filter's 128-entry tables and its path once first/second are complete. */
void contains_finish(struct lit_contains *c);

/* Reports (fn) each literal of c found in text, once. */
void contains_scan(const struct lit_contains *c, const char *text, size_t len, literal_match_fn fn, void *ctx);

#endif
