/* detect/literal.c — whole-value, prefix and suffix literals without Hyperscan. Most Sigma
 * `endswith`, `startswith` and exact values are plain literals (`Image|endswith:
 * '\cmd.exe'`): instead of a Hyperscan scan over the whole value, a value is looked up by its
 * first and last bytes — one hash probe per literal length below 8 present in the set, one
 * for the literals of 8 bytes or more (keyed by their first or last 8 bytes, then compared in
 * full) and one for whole values (keyed by the length too). compile.c sends here exactly the
 * expressions `literal_parse` accepts, so the results are Hyperscan's: byte mode, ASCII case
 * folding when caseless, bytes ≥ 0x80 compared as they are. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define LIT_KEY_BYTES 8

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

struct litset {
    struct lit_entry *entries;
    uint32_t entry_count;
    char *texts;
    struct lit_slot *slots;
    uint32_t mask;
    uint32_t prefix_lens; /* bit L (1..8): a prefix key of L bytes exists (8: literals ≥ 8 bytes) */
    uint32_t suffix_lens;
    uint32_t exact_len_max;
    bool exact;
    size_t bytes;
};

static inline uint8_t fold(uint8_t c) { return (uint8_t)(c - 'A') < 26 ? (uint8_t)(c + 32) : c; }

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

static inline uint64_t load_word(const char *s, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, s, n); /* little-endian hosts only: asserted in literal_set_build */
    return fold8(w);
}

static inline uint32_t tag_of(enum lit_kind kind, uint32_t key_len) { return ((uint32_t)kind + 1) << 28 | key_len; }

static inline uint32_t slot_of(uint64_t word, uint32_t tag, uint32_t mask)
{
    uint64_t h = word ^ ((uint64_t)tag * 0x9E3779B97F4A7C15ull); /* murmur3's finalizer: every bit counts */
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
    return (uint32_t)(h ^ (h >> 33)) & mask;
}

int literal_parse(const char *expr, uint32_t flags, char *out, uint32_t *len)
{
    const uint32_t allowed = HS_FLAG_CASELESS | HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
    if (flags & ~allowed) return -1; /* UTF-8 mode folds more than ASCII: Hyperscan's */
    size_t n = strlen(expr);
    bool start = n > 0 && expr[0] == '^';
    bool end = n >= 2 && expr[n - 2] == '\\' && expr[n - 1] == 'z';
    if (!start && !end) return -1; /* contains: Hyperscan's literal matcher is the right tool */
    size_t from = start ? 1 : 0, to = end ? n - 2 : n;
    uint32_t k = 0;
    for (size_t i = from; i < to;) {
        char c = expr[i];
        uint8_t byte;
        if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
            byte = (uint8_t)c;
            i++;
        } else if (c == '\\' && i + 4 <= to && expr[i + 1] == 'x') {
            uint8_t v = 0;
            for (size_t d = i + 2; d < i + 4; d++) {
                char h = expr[d];
                uint8_t nib = h >= '0' && h <= '9' ? (uint8_t)(h - '0')
                              : h >= 'a' && h <= 'f' ? (uint8_t)(h - 'a' + 10)
                              : h >= 'A' && h <= 'F' ? (uint8_t)(h - 'A' + 10)
                                                     : 0xFF;
                if (nib == 0xFF) return -1;
                v = (uint8_t)(v << 4 | nib);
            }
            byte = v;
            i += 4;
        } else {
            return -1; /* a class, a wildcard, an alternation: not a plain literal */
        }
        if (out) out[k] = (char)byte;
        k++;
    }
    if (k == 0 && !(start && end)) return -1;
    *len = k;
    return start && end ? LIT_EXACT : start ? LIT_PREFIX : LIT_SUFFIX;
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
        uint8_t cx = fold((uint8_t)x->text[x->kind == LIT_SUFFIX ? x->len - n + i : i]);
        uint8_t cy = fold((uint8_t)y->text[y->kind == LIT_SUFFIX ? y->len - n + i : i]);
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
            for (uint32_t k = 0; k < len; k++) t[k] = (char)fold((uint8_t)t[k]);
        set->entries[set->entry_count++] =
            (struct lit_entry){.text = t, .len = len, .id = i, .kind = (uint8_t)kind, .cased = cased};
        t += len;
        if (kind == LIT_EXACT) {
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
    for (uint32_t i = 0; i < set->entry_count;) {
        uint64_t word;
        uint32_t tag;
        key_of(&set->entries[i], &word, &tag);
        uint32_t j = i + 1;
        for (; j < set->entry_count; j++) {
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
    set->bytes = sizeof *set + text_bytes + set->entry_count * sizeof *set->entries + slots * sizeof *set->slots;
    return set;
}

void literal_set_free(struct litset *set)
{
    if (!set) return;
    free(set->entries);
    free(set->texts);
    free(set->slots);
    free(set);
}

size_t literal_set_bytes(const struct litset *set) { return set->bytes; }

static bool equal_at(const struct lit_entry *e, const char *s)
{
    if (e->cased) return memcmp(s, e->text, e->len) == 0;
    for (uint32_t i = 0; i < e->len; i++)
        if (fold((uint8_t)s[i]) != (uint8_t)e->text[i]) return false;
    return true;
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
            if (equal_at(e, e->kind == LIT_SUFFIX ? text + len - e->len : text)) fn(e->id, ctx);
        }
        return;
    }
}

void literal_set_scan(const struct litset *set, const char *text, size_t len, literal_match_fn fn, void *ctx)
{
    if (set->exact && len <= set->exact_len_max)
        probe(set, load_word(text, MAMORI_MIN(len, (size_t)LIT_KEY_BYTES)), tag_of(LIT_EXACT, (uint32_t)len), text,
              len, fn, ctx);
    size_t key_max = MAMORI_MIN(len, (size_t)LIT_KEY_BYTES);
    for (uint32_t lens = set->prefix_lens; lens; lens &= lens - 1) {
        uint32_t n = (uint32_t)__builtin_ctz(lens);
        if (n > key_max) break;
        probe(set, load_word(text, n), tag_of(LIT_PREFIX, n), text, len, fn, ctx);
    }
    for (uint32_t lens = set->suffix_lens; lens; lens &= lens - 1) {
        uint32_t n = (uint32_t)__builtin_ctz(lens);
        if (n > key_max) break;
        probe(set, load_word(text + len - n, n), tag_of(LIT_SUFFIX, n), text, len, fn, ctx);
    }
}
