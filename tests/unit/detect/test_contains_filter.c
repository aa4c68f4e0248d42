/* tests/unit/detect/test_contains_filter.c — the literal sets' substring filter (detect/literal.c,
 * contains_scan.c) with more distinct filter pairs than buckets, on each of its paths.
 *
 * A set's contains literals are found through the rarest byte pair of each; up to 8 distinct
 * pairs get a bucket each, up to 32 share the 8 buckets (grouped by first byte), which flags
 * more positions (the cross combinations of a bucket's pairs) for verification to reject. Sets
 * of 2 to 40 random literals over an alphabet of letters, digits and punctuation (so that
 * their pairs differ), cased and caseless, are built with literal_set_build and scanned over
 * random texts holding some of them (in either case), parts of them and their pairs' bytes
 * crossed; every scan must report exactly the literals a plain search finds, and a set of up
 * to 32 distinct pairs must stay in the filter (literal_contains_overflow). The alphabet has
 * bytes >= 0x80 that the VBMI path's 128-entry tables read as ':', '.' and 'a'. Texts of up to
 * 384 bytes take each path's steps and its tail. Run once per path (contains_path_max), the
 * scalar, the AVX2 and the AVX-512 VBMI one (each where the CPU has it). */
#include "detect/contains.h"
#include "detect/internal.h"
#include "helpers.h"

#include <ctype.h>

#define SETS 400
#define TEXTS 60

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789:|%(){}=,_-./\\ \xba\xae\xe1";

struct lit {
    char text[16];
    uint32_t len;
    bool cased;
};

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static bool equal_at(const char *s, const struct lit *l)
{
    for (uint32_t k = 0; k < l->len; k++) {
        unsigned char a = (unsigned char)s[k], b = (unsigned char)l->text[k];
        if (l->cased ? a != b : tolower(a) != tolower(b)) return false;
    }
    return true;
}

static uint64_t reference(const char *text, size_t len, const struct lit *lits, uint32_t n)
{
    uint64_t found = 0;
    for (uint32_t i = 0; i < n; i++)
        for (size_t p = 0; p + lits[i].len <= len; p++)
            if (equal_at(text + p, &lits[i])) {
                found |= (uint64_t)1 << i;
                break;
            }
    return found;
}

static void collect(uint32_t id, void *ctx) { *(uint64_t *)ctx |= (uint64_t)1 << id; }

/* The Hyperscan spelling of a literal: every byte as \xHH (literal_parse's syntax). */
static char *expression(const struct lit *l)
{
    char *e = mamori_xmalloc(4 * l->len + 1);
    for (uint32_t k = 0; k < l->len; k++) snprintf(e + 4 * k, 5, "\\x%02x", (unsigned)(unsigned char)l->text[k]);
    return e;
}

static void random_text(char *out, size_t *len, size_t cap, const struct lit *lits, uint32_t n)
{
    size_t target = xorshift_below(&rng, (uint32_t)cap - 16), o = 0;
    while (o < target) {
        uint32_t what = xorshift_below(&rng, 10);
        const struct lit *l = &lits[xorshift_below(&rng, n)];
        if (what < 2 && o + l->len < cap) { /* a literal, in a random case when caseless */
            for (uint32_t k = 0; k < l->len; k++) {
                char c = l->text[k];
                out[o++] = !l->cased && xorshift_below(&rng, 2) ? (char)toupper((unsigned char)c) : c;
            }
        } else if (what < 4 && o + l->len < cap) { /* all of a literal but its last byte */
            memcpy(out + o, l->text, l->len - 1);
            o += l->len - 1;
        } else if (what < 6 && o + 2 < cap) { /* two literals' bytes crossed */
            out[o++] = l->text[0];
            out[o++] = lits[xorshift_below(&rng, n)].text[1];
        } else {
            out[o++] = alphabet[xorshift_below(&rng, sizeof alphabet - 1)];
        }
    }
    *len = o;
}

static void many_pairs_match_reference(enum contains_path path)
{
    contains_path_max = path;
    uint32_t in_filter = 0, many = 0;
    for (uint32_t s = 0; s < SETS; s++) {
        uint32_t n = 2 + xorshift_below(&rng, 39); /* up to 40: most fit 32 pairs */
        struct lit lits[LITERAL_CONTAINS_MAX];
        const char *exprs[LITERAL_CONTAINS_MAX];
        uint32_t flags[LITERAL_CONTAINS_MAX];
        for (uint32_t i = 0; i < n; i++) {
            lits[i].len = 2 + xorshift_below(&rng, 11);
            for (uint32_t k = 0; k < lits[i].len; k++) lits[i].text[k] = alphabet[xorshift_below(&rng, sizeof alphabet - 1)];
            lits[i].cased = xorshift_below(&rng, 4) == 0;
            exprs[i] = expression(&lits[i]);
            flags[i] = lits[i].cased ? 0 : HS_FLAG_CASELESS;
        }
        if (literal_contains_overflow(exprs, flags, n) != UINT32_MAX) { /* more than 32 pairs */
            for (uint32_t i = 0; i < n; i++) free((char *)exprs[i]);
            continue;
        }
        in_filter++;
        many += n > 24; /* such sets have more than 8 distinct pairs (here: almost surely) */
        struct litset *set = literal_set_build(exprs, flags, n);
        assert_non_null(set);
        for (uint32_t t = 0; t < TEXTS; t++) {
            char text[400];
            size_t len;
            random_text(text, &len, sizeof text, lits, n);
            uint64_t got = 0;
            literal_set_scan(set, text, len, collect, &got);
            uint64_t want = reference(text, len, lits, n);
            if (got != want) fprintf(stderr, "set %u text %u: got %llx want %llx\n", s, t, (unsigned long long)got,
                                     (unsigned long long)want);
            assert_true(got == want);
        }
        literal_set_free(set);
        for (uint32_t i = 0; i < n; i++) free((char *)exprs[i]);
    }
    fprintf(stderr, "path %d: %u of %u sets in the filter, %u of them of more than 24 literals\n", (int)path, in_filter,
            SETS, many);
    contains_path_max = CONTAINS_VBMI;
    assert_true(in_filter > SETS / 2);
    assert_true(many > 20);
}

static void test_scalar_matches_reference(void **state)
{
    (void)state;
    many_pairs_match_reference(CONTAINS_SCALAR);
}

static void test_avx2_matches_reference(void **state)
{
    (void)state;
    many_pairs_match_reference(CONTAINS_AVX2);
}

static void test_vbmi_matches_reference(void **state)
{
    (void)state;
    many_pairs_match_reference(CONTAINS_VBMI);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_matches_reference),
        cmocka_unit_test(test_avx2_matches_reference),
        cmocka_unit_test(test_vbmi_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
