/* detect/contains_scan.c — the substring filter of literal sets run over a value (see
 * contains.h): candidate positions by the AVX-512 VBMI, AVX2 or scalar lookup of each
 * position's pair, then each candidate's literals verified. */
#include "contains.h"
#include "textcmp.h"

#include <string.h>

#ifdef DETECT_HAVE_AVX2
#include <immintrin.h>
#endif

/* Verifies the literals of the buckets in `buckets` whose filter pair would sit at text[pos]. */
static inline uint64_t contains_verify(const struct lit_contains *c, const char *text, size_t len, size_t pos,
                                       uint32_t buckets, uint64_t seen, literal_match_fn fn, void *ctx)
{
    /* the window: the 8 bytes from WIN_BEFORE before pos, as they are and folded; where it
     * would leave the text, each entry is compared in full */
    bool window = pos >= WIN_BEFORE && pos - WIN_BEFORE + 8 <= len;
    uint64_t raw = 0, folded = 0;
    if (window) {
        memcpy(&raw, text + pos - WIN_BEFORE, sizeof raw);
        folded = fold8(raw);
    }
    /* a shared bucket also flags its pairs' cross combinations: only the entries of the pair
     * at pos are compared */
    uint16_t at = folded_pair((const uint8_t *)text, pos);
    for (; buckets; buckets &= buckets - 1) {
        uint32_t b = (uint32_t)__builtin_ctz(buckets);
        for (uint32_t k = c->bucket_pair[b]; k < c->bucket_pair[b + 1]; k++) {
            if (c->pair_key[k] != at) continue;
            for (uint32_t i = c->pair_first[k]; i < c->pair_first[k + 1]; i++) {
                const struct lit_contains_entry *e = &c->entries[i];
                if ((seen >> i) & 1 || pos < e->pair) continue;
                if (window && ((e->cased ? raw : folded) ^ e->win) & e->win_mask) continue;
                size_t start = pos - e->pair;
                if (start + e->len > len) continue;
                if (lit_equal(text + start, e->text, e->len, e->cased)) {
                    seen |= (uint64_t)1 << i;
                    fn(e->id, ctx);
                }
            }
            return seen; /* a pair is in one bucket only */
        }
    }
    return seen;
}

static void contains_scan_scalar(const struct lit_contains *c, const char *text, size_t len, literal_match_fn fn,
                                 void *ctx)
{
    const uint8_t *t = (const uint8_t *)text;
    uint64_t seen = 0;
    for (size_t p = 0; p + 1 < len; p++) {
        uint32_t m = c->first[t[p]] & c->second[t[p + 1]];
        if (MAMORI_UNLIKELY(m)) seen = contains_verify(c, text, len, p, m, seen, fn, ctx);
    }
}

#ifdef DETECT_HAVE_AVX2
/* Bucket bits of the pairs starting at p[0..32) (p[32] is read). */
__attribute__((target("avx2"))) static inline __m256i contains_block(const uint8_t *p, __m256i lo0, __m256i hi0,
                                                                      __m256i lo1, __m256i hi1)
{
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i a = _mm256_loadu_si256((const __m256i *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)(p + 1));
    __m256i m0 = _mm256_and_si256(_mm256_shuffle_epi8(lo0, _mm256_and_si256(a, nib)),
                                  _mm256_shuffle_epi8(hi0, _mm256_and_si256(_mm256_srli_epi16(a, 4), nib)));
    __m256i m1 = _mm256_and_si256(_mm256_shuffle_epi8(lo1, _mm256_and_si256(b, nib)),
                                  _mm256_shuffle_epi8(hi1, _mm256_and_si256(_mm256_srli_epi16(b, 4), nib)));
    return _mm256_and_si256(m0, m1);
}

/* Verifies the candidate positions nz (bits of a block at text[at]) whose bucket bits m holds. */
__attribute__((target("avx2"))) static inline uint64_t contains_report(const struct lit_contains *c, const char *text,
                                                                       size_t len, size_t at, __m256i m, uint32_t nz,
                                                                       uint64_t seen, literal_match_fn fn, void *ctx)
{
    uint8_t bits[32];
    _mm256_storeu_si256((__m256i *)bits, m);
    for (; nz; nz &= nz - 1) {
        uint32_t k = (uint32_t)__builtin_ctz(nz);
        seen = contains_verify(c, text, len, at + k, bits[k], seen, fn, ctx);
    }
    return seen;
}

__attribute__((target("avx2"))) static inline uint32_t block_nonzero(__m256i m)
{
    return ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(m, _mm256_setzero_si256()));
}

__attribute__((target("avx2"))) static void contains_scan_avx2(const struct lit_contains *c, const char *text,
                                                                size_t len, literal_match_fn fn, void *ctx)
{
    const __m256i lo0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)c->lo0));
    const __m256i hi0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)c->hi0));
    const __m256i lo1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)c->lo1));
    const __m256i hi1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)c->hi1));
    const uint8_t *t = (const uint8_t *)text;
    uint64_t seen = 0;
    size_t j = 0;
    /* two blocks per test: most of a keyword text holds no candidate pair */
    for (; j + 65 <= len; j += 64) {
        __m256i m0 = contains_block(t + j, lo0, hi0, lo1, hi1), m1 = contains_block(t + j + 32, lo0, hi0, lo1, hi1);
        if (MAMORI_LIKELY(_mm256_testz_si256(_mm256_or_si256(m0, m1), _mm256_or_si256(m0, m1)))) continue;
        seen = contains_report(c, text, len, j, m0, block_nonzero(m0), seen, fn, ctx);
        seen = contains_report(c, text, len, j + 32, m1, block_nonzero(m1), seen, fn, ctx);
    }
    for (; j + 33 <= len; j += 32) {
        __m256i m = contains_block(t + j, lo0, hi0, lo1, hi1);
        uint32_t nz = block_nonzero(m);
        if (MAMORI_UNLIKELY(nz)) seen = contains_report(c, text, len, j, m, nz, seen, fn, ctx);
    }
    if (j + 1 >= len) return;
    if (j) {
        /* the last positions of a long value: its last 33 bytes, the pairs already filtered
         * (before j) masked off (0 < j - at < 32: the loops stop at the first j > len - 33) */
        size_t at = len - 33;
        __m256i m = contains_block(t + at, lo0, hi0, lo1, hi1);
        uint32_t nz = block_nonzero(m) & (~0u << (j - at));
        if (nz) contains_report(c, text, len, at, m, nz, seen, fn, ctx);
        return;
    }
    /* a value shorter than 33 bytes: zero padded */
    uint8_t pad[64];
    _mm256_storeu_si256((__m256i *)(pad + 32), _mm256_setzero_si256());
    _mm256_storeu_si256((__m256i *)pad, _mm256_setzero_si256());
    memcpy(pad, t, len);
    __m256i m = contains_block(pad, lo0, hi0, lo1, hi1);
    uint32_t nz = block_nonzero(m) & (uint32_t)(((uint64_t)1 << (len - 1)) - 1); /* pairs inside the value */
    if (nz) contains_report(c, text, len, 0, m, nz, seen, fn, ctx);
}

/* 64 positions per step where the CPU has AVX-512 VBMI: vpermi2b looks a byte's bucket bits
 * up in one 128-entry table instead of two nibble shuffles (5 instructions a step where AVX2
 * takes 15 per 32 positions). Two steps per test: most of a keyword text holds no candidate
 * pair. The search loop makes no call, so that the tables stay in registers (the SysV ABI
 * keeps no vector register across a call); they are loaded again after each verification. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void contains_scan_vbmi(const struct lit_contains *c,
                                                                                      const char *text, size_t len,
                                                                                      literal_match_fn fn, void *ctx)
{
    const uint8_t *t = (const uint8_t *)text;
    uint64_t seen = 0;
    if (len < 2) return;
    size_t last = len - 1; /* pairs start before it */
    for (size_t j = 0;; j += 128) {
        const __m512i f0 = _mm512_loadu_si512(c->first7), f1 = _mm512_loadu_si512(c->first7 + 64);
        const __m512i s0 = _mm512_loadu_si512(c->second7), s1 = _mm512_loadu_si512(c->second7 + 64);
        __m512i m0, m1;
        uint64_t nz0, nz1;
        bool tail = false;
        for (;; j += 128) {
            __m512i a0, b0, a1, b1;
            uint64_t k0 = ~0ull, k1 = ~0ull;
            if (MAMORI_LIKELY(j + 129 <= len)) {
                a0 = _mm512_loadu_si512(t + j);
                b0 = _mm512_loadu_si512(t + j + 1);
                a1 = _mm512_loadu_si512(t + j + 64);
                b1 = _mm512_loadu_si512(t + j + 65);
            } else {
                /* the last n < 128 pair starts: masked loads, which read no byte past the text */
                if (j >= last) return;
                size_t n = last - j;
                k0 = n >= 64 ? ~0ull : ((uint64_t)1 << n) - 1;
                k1 = n > 64 ? ((uint64_t)1 << (n - 64)) - 1 : 0;
                a0 = _mm512_maskz_loadu_epi8(k0, t + j);
                b0 = _mm512_maskz_loadu_epi8(k0, t + j + 1);
                a1 = _mm512_maskz_loadu_epi8(k1, t + j + 64);
                b1 = _mm512_maskz_loadu_epi8(k1, t + j + 65);
                tail = true;
            }
            m0 = _mm512_and_si512(_mm512_permutex2var_epi8(f0, a0, f1), _mm512_permutex2var_epi8(s0, b0, s1));
            m1 = _mm512_and_si512(_mm512_permutex2var_epi8(f0, a1, f1), _mm512_permutex2var_epi8(s0, b1, s1));
            nz0 = _mm512_mask_test_epi8_mask(k0, m0, m0);
            nz1 = _mm512_mask_test_epi8_mask(k1, m1, m1);
            if (MAMORI_UNLIKELY(nz0 | nz1)) break;
            if (tail) return;
        }
        uint8_t bits[128];
        _mm512_storeu_si512(bits, m0);
        _mm512_storeu_si512(bits + 64, m1);
        for (uint64_t nz = nz0; nz; nz &= nz - 1) {
            uint32_t k = (uint32_t)__builtin_ctzll(nz);
            seen = contains_verify(c, text, len, j + k, bits[k], seen, fn, ctx);
        }
        for (uint64_t nz = nz1; nz; nz &= nz - 1) {
            uint32_t k = (uint32_t)__builtin_ctzll(nz);
            seen = contains_verify(c, text, len, j + 64 + k, bits[64 + k], seen, fn, ctx);
        }
        if (tail) return;
    }
}
#endif

enum contains_path contains_path_max = CONTAINS_VBMI;

void contains_finish(struct lit_contains *c)
{
    for (int i = 0; i < 128; i++) {
        c->first7[i] = c->first[i] | c->first[i + 128];
        c->second7[i] = c->second[i] | c->second[i + 128];
    }
    c->path = CONTAINS_SCALAR;
#ifdef DETECT_HAVE_AVX2
    if (__builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw")) c->path = CONTAINS_VBMI;
    else if (__builtin_cpu_supports("avx2")) c->path = CONTAINS_AVX2;
#endif
    if (c->path > contains_path_max) c->path = (uint8_t)contains_path_max;
}

void contains_scan(const struct lit_contains *c, const char *text, size_t len, literal_match_fn fn, void *ctx)
{
#ifdef DETECT_HAVE_AVX2
    if (c->path == CONTAINS_VBMI) contains_scan_vbmi(c, text, len, fn, ctx);
    else if (c->path == CONTAINS_AVX2) contains_scan_avx2(c, text, len, fn, ctx);
    else
#endif
        contains_scan_scalar(c, text, len, fn, ctx);
}
