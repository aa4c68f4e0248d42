/* detect/literal.c — whole-value, prefix and suffix literals without Hyperscan. Most Sigma
 * `endswith`, `startswith` and exact values are plain literals (`Image|endswith:
 * '\cmd.exe'`): instead of a Hyperscan scan over the whole value, a value is looked up by its
 * first and last bytes — one hash probe per literal length below 8 present in the set, one
 * for the literals of 8 bytes or more (keyed by their first or last 8 bytes, then compared in
 * full) and one for whole values (keyed by the length too). compile.c sends here exactly the
 * expressions `literal_parse` accepts, so the results are Hyperscan's: byte mode, ASCII case
 * folding when caseless, bytes ≥ 0x80 compared as they are. Small sets of `contains` literals
 * are built here into the substring filter (contains.h), which contains_scan.c runs. */
#include "contains.h"
#include "internal.h"
#include "textcmp.h"

#include <stdlib.h>
#include <string.h>

#define LIT_KEY_BYTES 8 /* a uint64_t: literal_set_scan takes the keys of every length from one word */
_Static_assert(LIT_KEY_BYTES == sizeof(uint64_t), "a key is one word");

struct lit_entry {
    const char *text; /* folded (ASCII lowercase) when caseless; as written when cased */
    uint32_t len;
    uint32_t id;
    uint8_t kind; /* enum lit_kind */
    bool cased;
};

/* One bucket: every entry of one (kind, key length, key bytes). */
struct lit_slot {
    uint64_t word; /* folded key bytes, little-endian, zero padded */
    uint32_t tag;  /* (kind + 1) << 28 | key length; 0 = empty slot */
    uint32_t first, count;
};

/* Unanchored literals of one or two bytes, which the substring filter cannot take (a single
 * byte has no pair) or has no bucket left for. Hyperscan, their fallback, confirms a short
 * literal at nearly every position of a value: a 2,944-literal command-line database took
 * 1,703 ns per 56-byte value with its 114 such literals, 653 without (docs/detection.md
 * §10.18). A single byte is looked for with memchr (both cases when caseless). Pairs by one
 * walk over the value: bit (a | b << 8) of `bits` is set for every byte pair some literal
 * matches (each case variant of a caseless one), and a set bit is resolved in `pairs`, sorted
 * by folded pair. */
struct lit_pair {
    uint16_t folded; /* first | second << 8, ASCII lowercase */
    uint8_t b0, b1;  /* as written (cased) */
    bool cased;
    uint32_t id;
};

struct lit_short {
    uint64_t *bits; /* 65536 bits, allocated with the first pair */
    struct lit_pair *pairs;
    uint32_t pair_count, pair_cap;
    struct {
        uint8_t lower, upper; /* equal when cased or not a letter */
        uint32_t id;
    } one[LITERAL_SHORT_MAX];
    uint32_t one_count;
};

/* What literal_set_scan reads of every set first (in its first cache line), then the rest. */
struct litset {
    struct lit_short *shorts; /* NULL when there is none */
    struct lit_slot *slots;
    uint32_t mask;
    uint32_t prefix_lens; /* bit L (1..8): a prefix key of L bytes exists (8: literals ≥ 8 bytes) */
    uint32_t suffix_lens;
    uint32_t exact_len_max;
    bool exact;
    bool has_contains; /* contains.count != 0 */
    struct lit_entry *entries;
    uint32_t entry_count;
    char *texts;
    size_t bytes;
    struct lit_contains contains;
};

static inline uint64_t load_word(const char *s, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, s, n); /* little-endian hosts only: asserted in literal_set_build */
    return fold8(w);
}

/* A rough frequency of a (folded) byte in event text: the filter pair of a literal is the
 * pair with the lowest product. Letters and digits are common, path and GUID punctuation
 * too; ':' '|' '$' and most other punctuation are rare. */
static uint32_t byte_freq(uint8_t c)
{
    static const char common[] = "etaoinsrlcdwx";
    static const char medium[] = "hmpufgbyv";
    if (c >= '0' && c <= '9') return 20;
    if (c >= 'a' && c <= 'z') {
        if (strchr(common, c)) return 35;
        if (strchr(medium, c)) return 14;
        return 4;
    }
    switch (c) {
    case ' ': case '\\': return 30;
    case '.': case '-': return 15;
    case '_': case '/': case '{': case '}': case '"': case '=': case ',': return 5;
    case ':': case '|': case '(': case ')': case '%': case '\'': return 3;
    default: return 1;
    }
}

/* The offset of a literal's (len >= 2) rarest adjacent pair, its bytes case folded. */
static uint32_t best_pair(const uint8_t *t, uint32_t len)
{
    uint32_t best = 0, best_score = UINT32_MAX;
    for (uint32_t i = 0; i + 1 < len; i++) {
        uint32_t score = byte_freq(ascii_fold(t[i])) * byte_freq(ascii_fold(t[i + 1]));
        if (score < best_score) best_score = score, best = i;
    }
    return best;
}

/* Distinct folded filter pairs of the contains expressions (first byte | second << 8) into
 * pairs[max]; returns how many there are, max + 1 when there are more, or UINT32_MAX when
 * there are more than LITERAL_CONTAINS_MAX contains expressions. */
static uint32_t contains_pairs(const char *const *exprs, const uint32_t *flags, uint32_t count, uint16_t *pairs,
                               uint32_t max)
{
    uint32_t n = 0, literals = 0;
    for (uint32_t i = 0; i < count; i++) {
        size_t el = strlen(exprs[i]);
        uint8_t stackbuf[256];
        uint8_t *t = el <= sizeof stackbuf ? stackbuf : mamori_xmalloc(el);
        uint32_t len;
        int kind = literal_parse(exprs[i], flags[i], (char *)t, &len);
        if (kind == LIT_CONTAINS && len >= 2) {
            literals++;
            uint16_t pair = folded_pair(t, best_pair(t, len));
            uint32_t k = 0;
            while (k < n && pairs[k] != pair) k++;
            if (k == n) {
                if (n == max) { /* one bucket too many: does not fit */
                    if (t != stackbuf) free(t);
                    return max + 1;
                }
                pairs[n++] = pair;
            }
        }
        if (t != stackbuf) free(t);
    }
    return literals > LITERAL_CONTAINS_MAX ? UINT32_MAX : n;
}

/* Whether the contains literals of two bytes or more among exprs fit the substring filter. */
static bool filter_fits(const char *const *exprs, const uint32_t *flags, uint32_t count)
{
    uint16_t pairs[LIT_PAIRS_MAX];
    return contains_pairs(exprs, flags, count, pairs, LIT_PAIRS_MAX) <= LIT_PAIRS_MAX;
}

static int pair_first_cmp(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    return (x & 0xff) != (y & 0xff) ? (int)(x & 0xff) - (int)(y & 0xff) : (int)(x >> 8) - (int)(y >> 8);
}

uint32_t literal_contains_overflow(const char *const *exprs, const uint32_t *flags, uint32_t count)
{
    uint32_t n1 = 0, n2 = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len;
        if (literal_parse(exprs[i], flags[i], NULL, &len) != LIT_CONTAINS || len > 2) continue;
        if (len == 1) n1++;
        else n2++;
    }
    if (n1 > LITERAL_SHORT_MAX) return 1; /* all to Hyperscan (no SigmaHQ path comes near) */
    if (filter_fits(exprs, flags, count)) return UINT32_MAX; /* all stay */
    return n2 <= LITERAL_PAIRS_MAX ? 3 : 2; /* the filter (or the pair table) keeps the pairs */
}

static void contains_mark(struct lit_contains *c, uint8_t folded, uint8_t bit, bool second)
{
    uint8_t variants[2] = {folded, ascii_upper(folded)};
    for (int v = 0; v < 2; v++) {
        uint8_t b = variants[v];
        (second ? c->second : c->first)[b] |= bit;
        (second ? c->lo1 : c->lo0)[b & 15] |= bit;
        (second ? c->hi1 : c->hi0)[b >> 4] |= bit;
    }
}

static inline uint32_t tag_of(enum lit_kind kind, uint32_t key_len) { return ((uint32_t)kind + 1) << 28 | key_len; }

static inline uint32_t slot_of(uint64_t word, uint32_t tag, uint32_t mask)
{
    /* one multiply: the high half mixes every byte of the key (a probe per literal length
     * per value is the hot path; the table is at most half full) */
    uint64_t h = (word ^ (word >> 29) ^ ((uint64_t)tag << 20)) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32) & mask;
}

size_t literal_byte(const char *s, size_t i, size_t to, uint8_t *byte)
{
    char c = s[i];
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
        *byte = (uint8_t)c;
        return 1;
    }
    if (c != '\\' || i + 4 > to || s[i + 1] != 'x') return 0;
    uint8_t v = 0;
    for (size_t d = i + 2; d < i + 4; d++) {
        char h = s[d];
        uint8_t nib = h >= '0' && h <= '9'   ? (uint8_t)(h - '0')
                      : h >= 'a' && h <= 'f' ? (uint8_t)(h - 'a' + 10)
                      : h >= 'A' && h <= 'F' ? (uint8_t)(h - 'A' + 10)
                                             : 0xFF;
        if (nib == 0xFF) return 0;
        v = (uint8_t)(v << 4 | nib);
    }
    *byte = v;
    return 4;
}

int literal_parse(const char *expr, uint32_t flags, char *out, uint32_t *len)
{
    const uint32_t allowed = HS_FLAG_CASELESS | HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
    if (flags & ~allowed) return -1; /* UTF-8 mode folds more than ASCII: Hyperscan's */
    size_t n = strlen(expr);
    bool start = n > 0 && expr[0] == '^';
    bool end = n >= 2 && expr[n - 2] == '\\' && expr[n - 1] == 'z';
    size_t from = start ? 1 : 0, to = end ? n - 2 : n;
    uint32_t k = 0;
    for (size_t i = from; i < to; k++) {
        uint8_t byte;
        size_t took = literal_byte(expr, i, to, &byte);
        if (!took) return -1; /* a class, a wildcard, an alternation: not a plain literal */
        if (out) out[k] = (char)byte;
        i += took;
    }
    if (k == 0 && !(start && end)) return -1;
    *len = k;
    return start && end ? LIT_EXACT : start ? LIT_PREFIX : end ? LIT_SUFFIX : LIT_CONTAINS;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct lit_entry *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    uint32_t kx = x->kind == LIT_EXACT ? x->len : MAMORI_MIN(x->len, (uint32_t)LIT_KEY_BYTES);
    uint32_t ky = y->kind == LIT_EXACT ? y->len : MAMORI_MIN(y->len, (uint32_t)LIT_KEY_BYTES);
    if (kx != ky) return kx < ky ? -1 : 1;
    uint32_t n = MAMORI_MIN(kx, (uint32_t)LIT_KEY_BYTES);
    for (uint32_t i = 0; i < n; i++) {
        /* the key bytes: the first n for exact and prefix, the last n for suffix */
        uint8_t cx = ascii_fold((uint8_t)x->text[x->kind == LIT_SUFFIX ? x->len - n + i : i]);
        uint8_t cy = ascii_fold((uint8_t)y->text[y->kind == LIT_SUFFIX ? y->len - n + i : i]);
        if (cx != cy) return cx < cy ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

static void key_of(const struct lit_entry *e, uint64_t *word, uint32_t *tag)
{
    uint32_t n = MAMORI_MIN(e->len, (uint32_t)LIT_KEY_BYTES);
    *word = load_word(e->kind == LIT_SUFFIX ? e->text + e->len - n : e->text, n);
    *tag = tag_of((enum lit_kind)e->kind, e->kind == LIT_EXACT ? e->len : n);
}

/* The filter pair of entry e (offset into its text in *off), folded: first | second << 8. */
static uint16_t entry_pair(const struct lit_entry *e, uint32_t *off)
{
    /* chosen and filed folded also when cased (contains_pairs's choice); verification is exact */
    *off = best_pair((const uint8_t *)e->text, e->len);
    return folded_pair((const uint8_t *)e->text, *off);
}

static void contains_build(struct lit_contains *c, const struct lit_entry *in)
{
    MAMORI_ASSERT(c->count <= LITERAL_CONTAINS_MAX); /* compile.c checks literal_contains_fit */
    uint16_t pairs[LIT_PAIRS_MAX];
    uint32_t npairs = 0;
    uint32_t *pair_idx = mamori_xmalloc(c->count * sizeof *pair_idx);
    uint32_t *offs = mamori_xmalloc(c->count * sizeof *offs);
    uint16_t *pair_of = mamori_xmalloc(c->count * sizeof *pair_of);
    for (uint32_t i = 0; i < c->count; i++) {
        pair_of[i] = entry_pair(&in[i], &offs[i]);
        uint32_t k = 0;
        while (k < npairs && pairs[k] != pair_of[i]) k++;
        MAMORI_ASSERT(k < LIT_PAIRS_MAX);
        if (k == npairs) pairs[npairs++] = pair_of[i];
    }
    /* pairs in buckets: one each up to LIT_BUCKETS, else runs of the pairs sorted by first byte */
    qsort(pairs, npairs, sizeof *pairs, pair_first_cmp);
    uint8_t bucket_of[LIT_PAIRS_MAX];
    for (uint32_t k = 0; k < npairs; k++) {
        bucket_of[k] = (uint8_t)(npairs <= LIT_BUCKETS ? k : k * LIT_BUCKETS / npairs);
        contains_mark(c, (uint8_t)(pairs[k] & 0xff), (uint8_t)(1u << bucket_of[k]), false);
        contains_mark(c, (uint8_t)(pairs[k] >> 8), (uint8_t)(1u << bucket_of[k]), true);
    }
    for (uint32_t i = 0; i < c->count; i++) {
        uint32_t k = 0;
        while (pairs[k] != pair_of[i]) k++;
        pair_idx[i] = k;
    }
    free(pair_of);
    c->entries = mamori_xmalloc(c->count * sizeof *c->entries);
    /* entries by pair, so by bucket too: bucket_of is nondecreasing in k */
    uint32_t n = 0, b = 0;
    for (uint32_t k = 0; k < npairs; k++) {
        for (; b <= bucket_of[k]; b++) c->bucket_pair[b] = (uint8_t)k;
        c->pair_key[k] = pairs[k];
        c->pair_first[k] = (uint8_t)n;
        for (uint32_t i = 0; i < c->count; i++)
            if (pair_idx[i] == k) {
                struct lit_contains_entry *e = &c->entries[n++];
                *e = (struct lit_contains_entry){
                    .text = in[i].text, .len = in[i].len, .id = in[i].id, .pair = offs[i], .cased = in[i].cased};
                for (uint32_t j = 0; j < 8; j++) {
                    int64_t at = (int64_t)offs[i] - WIN_BEFORE + j;
                    if (at < 0 || at >= (int64_t)e->len) continue;
                    e->win |= (uint64_t)(uint8_t)e->text[at] << 8 * j;
                    e->win_mask |= (uint64_t)0xff << 8 * j;
                }
            }
    }
    for (; b <= LIT_BUCKETS; b++) c->bucket_pair[b] = (uint8_t)npairs;
    c->pair_first[npairs] = (uint8_t)n;
    free(pair_idx);
    free(offs);
    contains_finish(c);
}

static struct lit_short *shorts_of(struct litset *set)
{
    if (!set->shorts) set->shorts = mamori_xcalloc(1, sizeof *set->shorts);
    return set->shorts;
}

static void short_add_one(struct litset *set, uint8_t c, bool cased, uint32_t id)
{
    struct lit_short *s = shorts_of(set);
    MAMORI_ASSERT(s->one_count < LITERAL_SHORT_MAX); /* compile.c checks literal_contains_overflow */
    uint8_t lower = cased ? c : ascii_fold(c);
    uint8_t upper = cased ? lower : ascii_upper(lower);
    s->one[s->one_count].lower = lower;
    s->one[s->one_count].upper = upper;
    s->one[s->one_count].id = id;
    s->one_count++;
}

static void short_add_pair(struct litset *set, const uint8_t *t, bool cased, uint32_t id)
{
    struct lit_short *s = shorts_of(set);
    MAMORI_ASSERT(s->pair_count < LITERAL_PAIRS_MAX);
    if (s->pair_count == s->pair_cap) {
        s->pair_cap = s->pair_cap ? s->pair_cap * 2 : 16;
        s->pairs = mamori_xrealloc(s->pairs, s->pair_cap * sizeof *s->pairs);
    }
    if (!s->bits) s->bits = mamori_xcalloc(65536 / 64, sizeof *s->bits);
    uint8_t f0 = ascii_fold(t[0]), f1 = ascii_fold(t[1]); /* caseless texts are folded already */
    s->pairs[s->pair_count++] =
        (struct lit_pair){.folded = (uint16_t)(f0 | f1 << 8), .b0 = t[0], .b1 = t[1], .cased = cased, .id = id};
    uint8_t v0[2] = {t[0], t[0]}, v1[2] = {t[1], t[1]};
    if (!cased) {
        v0[1] = ascii_upper(f0);
        v1[1] = ascii_upper(f1);
    }
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++) {
            uint32_t bit = v0[i] | (uint32_t)v1[k] << 8;
            s->bits[bit >> 6] |= (uint64_t)1 << (bit & 63);
        }
}

static int pair_cmp(const void *a, const void *b)
{
    const struct lit_pair *x = a, *y = b;
    if (x->folded != y->folded) return x->folded < y->folded ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

struct litset *literal_set_build(const char *const *exprs, const uint32_t *flags, uint32_t count)
{
    const uint16_t probe = 1;
    MAMORI_ASSERT(*(const uint8_t *)&probe == 1); /* load_word reads keys little-endian */
    struct litset *set = mamori_xcalloc(1, sizeof *set);
    size_t text_bytes = 0;
    for (uint32_t i = 0; i < count; i++) text_bytes += strlen(exprs[i]) + 1;
    set->texts = mamori_xmalloc(text_bytes ? text_bytes : 1);
    set->entries = mamori_xmalloc((count ? count : 1) * sizeof *set->entries);
    char *t = set->texts;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len;
        int kind = literal_parse(exprs[i], flags[i], t, &len);
        MAMORI_ASSERT(kind >= 0); /* compile.c sends only what literal_parse accepts */
        bool cased = !(flags[i] & HS_FLAG_CASELESS);
        if (!cased)
            for (uint32_t k = 0; k < len; k++) t[k] = (char)ascii_fold((uint8_t)t[k]);
        if (kind == LIT_CONTAINS && len == 1) {
            short_add_one(set, (uint8_t)t[0], cased, i);
            continue;
        }
        set->entries[set->entry_count++] =
            (struct lit_entry){.text = t, .len = len, .id = i, .kind = (uint8_t)kind, .cased = cased};
        t += len;
        if (kind == LIT_CONTAINS) {
            set->contains.count++;
        } else if (kind == LIT_EXACT) {
            set->exact = true;
            set->exact_len_max = MAMORI_MAX(set->exact_len_max, len);
        } else {
            uint32_t bit = 1u << MAMORI_MIN(len, (uint32_t)LIT_KEY_BYTES);
            if (kind == LIT_PREFIX) set->prefix_lens |= bit;
            else set->suffix_lens |= bit;
        }
    }
    qsort(set->entries, set->entry_count, sizeof *set->entries, entry_cmp);
    uint32_t slots = 16;
    while (slots < set->entry_count * 2) slots *= 2;
    set->slots = mamori_xcalloc(slots, sizeof *set->slots);
    set->mask = slots - 1;
    uint32_t anchored = set->entry_count - set->contains.count; /* contains entries sort last */
    for (uint32_t i = 0; i < anchored;) {
        uint64_t word;
        uint32_t tag;
        key_of(&set->entries[i], &word, &tag);
        uint32_t j = i + 1;
        for (; j < anchored; j++) {
            uint64_t w2;
            uint32_t t2;
            key_of(&set->entries[j], &w2, &t2);
            if (w2 != word || t2 != tag) break;
        }
        uint32_t s = slot_of(word, tag, set->mask);
        while (set->slots[s].tag) s = (s + 1) & set->mask;
        set->slots[s] = (struct lit_slot){.word = word, .tag = tag, .first = i, .count = j - i};
        i = j;
    }
    if (set->contains.count && !filter_fits(exprs, flags, count)) {
        /* only pairs are left (compile.c moved the longer ones to Hyperscan): the pair table */
        for (uint32_t i = anchored; i < set->entry_count; i++) {
            const struct lit_entry *e = &set->entries[i];
            MAMORI_ASSERT(e->len == 2);
            short_add_pair(set, (const uint8_t *)e->text, e->cased, e->id);
        }
        set->entry_count = anchored;
        set->contains.count = 0;
    }
    set->bytes = sizeof *set + text_bytes + set->entry_count * sizeof *set->entries + slots * sizeof *set->slots;
    if (set->shorts) {
        struct lit_short *sh = set->shorts;
        if (sh->pair_count) qsort(sh->pairs, sh->pair_count, sizeof *sh->pairs, pair_cmp);
        set->bytes += sizeof *sh + sh->pair_count * sizeof *sh->pairs + (sh->bits ? 65536 / 8 : 0);
    }
    if (set->contains.count) contains_build(&set->contains, set->entries + anchored);
    set->has_contains = set->contains.count != 0;
    set->bytes += set->contains.count * sizeof *set->contains.entries;
    return set;
}

void literal_set_free(struct litset *set)
{
    if (!set) return;
    if (set->shorts) {
        free(set->shorts->pairs);
        free(set->shorts->bits);
    }
    free(set->shorts);
    free(set->contains.entries);
    free(set->entries);
    free(set->texts);
    free(set->slots);
    free(set);
}

size_t literal_set_bytes(const struct litset *set) { return set->bytes; }

bool literal_all_in_line(const char *const *exprs, const uint32_t *flags, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        size_t n = strlen(exprs[i]);
        char stackbuf[256];
        char *t = n <= sizeof stackbuf ? stackbuf : mamori_xmalloc(n);
        uint32_t len;
        bool in_line = literal_parse(exprs[i], flags[i], t, &len) == LIT_CONTAINS && !memchr(t, '\n', len);
        if (t != stackbuf) free(t);
        if (!in_line) return false;
    }
    return count > 0;
}

bool literal_set_worth_memo(const struct litset *set)
{
    return set->contains.count || set->shorts ||
           __builtin_popcount(set->prefix_lens) + __builtin_popcount(set->suffix_lens) >= 3;
}

static inline void probe(const struct litset *set, uint64_t word, uint32_t tag, const char *text, size_t len,
                         literal_match_fn fn, void *ctx)
{
    for (uint32_t s = slot_of(word, tag, set->mask);; s = (s + 1) & set->mask) {
        const struct lit_slot *slot = &set->slots[s];
        if (!slot->tag) return;
        if (slot->tag != tag || slot->word != word) continue;
        for (uint32_t i = slot->first; i < slot->first + slot->count; i++) {
            const struct lit_entry *e = &set->entries[i];
            if (e->len > len) continue;
            if (lit_equal(e->kind == LIT_SUFFIX ? text + len - e->len : text, e->text, e->len, e->cased)) fn(e->id, ctx);
        }
        return;
    }
}

/* Reports the pair literals matching the bytes at t[0], t[1] (a set bit of `bits`), each
 * once: seen has a bit per entry of pairs. */
static void pair_report(const struct lit_short *s, const uint8_t *t, uint64_t *seen, literal_match_fn fn, void *ctx)
{
    uint16_t key = (uint16_t)(ascii_fold(t[0]) | ascii_fold(t[1]) << 8);
    uint32_t lo = 0, hi = s->pair_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->pairs[mid].folded < key) lo = mid + 1;
        else hi = mid;
    }
    for (uint32_t i = lo; i < s->pair_count && s->pairs[i].folded == key; i++) {
        const struct lit_pair *p = &s->pairs[i];
        if ((seen[i >> 6] >> (i & 63)) & 1 || (p->cased && (p->b0 != t[0] || p->b1 != t[1]))) continue;
        seen[i >> 6] |= (uint64_t)1 << (i & 63);
        fn(p->id, ctx);
    }
}

static void short_scan(const struct lit_short *s, const char *text, size_t len, literal_match_fn fn, void *ctx)
{
    for (uint32_t i = 0; i < s->one_count; i++) {
        uint8_t lower = s->one[i].lower, upper = s->one[i].upper;
        if (memchr(text, lower, len) || (upper != lower && memchr(text, upper, len))) fn(s->one[i].id, ctx);
    }
    if (!s->pair_count || len < 2) return;
    const uint8_t *t = (const uint8_t *)text;
    uint64_t seen[LITERAL_PAIRS_MAX / 64];
    memset(seen, 0, (s->pair_count + 63) / 64 * sizeof *seen); /* the words pair_report can touch */
    for (size_t p = 0; p + 1 < len; p++) {
        uint32_t bit = t[p] | (uint32_t)t[p + 1] << 8;
        if (MAMORI_UNLIKELY((s->bits[bit >> 6] >> (bit & 63)) & 1)) pair_report(s, t + p, seen, fn, ctx);
    }
}

void literal_set_scan(const struct litset *set, const char *text, size_t len, literal_match_fn fn, void *ctx)
{
    if (set->shorts) short_scan(set->shorts, text, len, fn, ctx);
    if (set->has_contains) contains_scan(&set->contains, text, len, fn, ctx);
    if (set->exact && len <= set->exact_len_max)
        probe(set, load_word(text, MAMORI_MIN(len, (size_t)LIT_KEY_BYTES)), tag_of(LIT_EXACT, (uint32_t)len), text,
              len, fn, ctx);
    size_t key_max = MAMORI_MIN(len, (size_t)LIT_KEY_BYTES);
    /* The keys of every length from one load: the first key_max bytes folded, masked to the
     * first n; the last key_max, shifted down to the last n (load_word's layout for n). */
    if (set->prefix_lens) {
        uint64_t head = load_word(text, key_max);
        for (uint32_t lens = set->prefix_lens; lens; lens &= lens - 1) {
            uint32_t n = (uint32_t)__builtin_ctz(lens);
            if (n > key_max) break;
            probe(set, n == LIT_KEY_BYTES ? head : head & ((1ull << (8 * n)) - 1), tag_of(LIT_PREFIX, n), text, len, fn,
                  ctx);
        }
    }
    if (set->suffix_lens) {
        uint64_t tail = load_word(text + len - key_max, key_max);
        for (uint32_t lens = set->suffix_lens; lens; lens &= lens - 1) {
            uint32_t n = (uint32_t)__builtin_ctz(lens);
            if (n > key_max) break;
            probe(set, tail >> (8 * (key_max - n)), tag_of(LIT_SUFFIX, n), text, len, fn, ctx);
        }
    }
}
