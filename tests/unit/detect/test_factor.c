/* tests/unit/detect/test_factor.c — the required literal of a regular expression
 * (regex_factor, detect/strength.c), which stands in for the expression as its rule's
 * trigger: every value the expression matches must contain it (caselessly), or the rule
 * would never be a candidate where it holds. Thousands of random expressions — literals,
 * escapes, `.`, `\d`, `\s`, classes, groups with alternatives, every quantifier, `(?i)`,
 * anchors — are generated together with values they match; Hyperscan confirms each match and
 * the factor must be in the value. Then a rule set checks the trigger it becomes. */
#include "detect/compile_internal.h"
#include "helpers.h"

#include <ctype.h>
#include <stdint.h>

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n) { return xorshift_below(&rng_state, n); }

struct gen {
    char rx[512], val[512];
    size_t rl, vl;
};

static void put_rx(struct gen *g, const char *s)
{
    size_t n = strlen(s);
    if (g->rl + n < sizeof g->rx) memcpy(g->rx + g->rl, s, n), g->rl += n;
    g->rx[g->rl] = '\0';
}

static void put_val(struct gen *g, char c)
{
    if (g->vl + 1 < sizeof g->val) g->val[g->vl++] = c;
    g->val[g->vl] = '\0';
}

static const char alphabet[] = "abAB-.: 1/";

/* One atom: its syntax into g->rx; `emit` writes one matching text into g->val. */
static void atom(struct gen *g, int depth, char *sample, size_t cap);

static void sequence(struct gen *g, int depth, char *sample, size_t cap)
{
    size_t len = 0;
    sample[0] = '\0';
    for (uint32_t n = 1 + rnd(4); n; n--) {
        char one[128];
        atom(g, depth, one, sizeof one);
        /* a quantifier: the sample repeats the atom's text accordingly */
        static const char *const quant[] = {"", "", "", "?", "*", "+", "{1,3}", "{0,2}", "{2}", "+?"};
        const char *q = quant[rnd(MAMORI_ARRAY_LEN(quant))];
        put_rx(g, q);
        uint32_t times = 1;
        if (!strcmp(q, "?") || !strcmp(q, "{0,2}")) times = rnd(2);
        else if (!strcmp(q, "*")) times = rnd(3);
        else if (!strcmp(q, "+") || !strcmp(q, "+?") || !strcmp(q, "{1,3}")) times = 1 + rnd(2);
        else if (!strcmp(q, "{2}")) times = 2;
        for (uint32_t t = 0; t < times; t++) {
            size_t ol = strlen(one);
            if (len + ol + 1 < cap) memcpy(sample + len, one, ol + 1), len += ol;
        }
    }
}

static void atom(struct gen *g, int depth, char *sample, size_t cap)
{
    uint32_t kind = rnd(depth < 2 ? 9 : 7);
    char c = alphabet[rnd(sizeof alphabet - 1)];
    switch (kind) {
    case 0: case 1: case 2: case 3: { /* a literal character, escaped when punctuation */
        char rx[3] = {c, 0, 0};
        if (!isalnum((unsigned char)c) && c != ' ' && c != ':' && c != '/') rx[0] = '\\', rx[1] = c;
        put_rx(g, rx);
        snprintf(sample, cap, "%c", isalpha((unsigned char)c) && rnd(2) ? c ^ 0x20 : c);
        return;
    }
    case 4: put_rx(g, "\\d"); snprintf(sample, cap, "%c", '0' + (char)rnd(10)); return;
    case 5: put_rx(g, "."); snprintf(sample, cap, "%c", alphabet[rnd(sizeof alphabet - 1)]); return;
    case 6: put_rx(g, "[ab-]"); snprintf(sample, cap, "%c", "ab-"[rnd(3)]); return;
    default: { /* a group of alternatives */
        put_rx(g, rnd(2) ? "(?:" : "(");
        char first[128], second[128];
        sequence(g, depth + 1, first, sizeof first);
        put_rx(g, "|");
        sequence(g, depth + 1, second, sizeof second);
        put_rx(g, ")");
        snprintf(sample, cap, "%s", rnd(2) ? first : second);
        return;
    }
    }
}

static int on_hit(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx)
{
    (void)id, (void)from, (void)to, (void)flags;
    *(bool *)ctx = true;
    return 1;
}

static bool contains_caseless(const char *v, const char *f, size_t n)
{
    for (size_t i = 0; v[i]; i++) {
        size_t k = 0;
        while (k < n && v[i + k] && tolower((unsigned char)v[i + k]) == tolower((unsigned char)f[k])) k++;
        if (k == n) return true;
    }
    return false;
}

static void test_factor_in_every_match(void **state)
{
    (void)state;
    uint32_t factored = 0, checked = 0;
    hs_scratch_t *scratch = NULL;
    for (uint32_t r = 0; r < 3000; r++) {
        struct gen g = {0};
        bool caseless = rnd(3) == 0, inline_i = rnd(4) == 0;
        if (inline_i) put_rx(&g, "(?i)");
        if (rnd(4) == 0) put_rx(&g, "^");
        char sample[512];
        sequence(&g, 0, sample, sizeof sample);
        if (rnd(6) == 0) { /* a top-level alternation: no factor */
            char other[512];
            put_rx(&g, "|");
            sequence(&g, 0, other, sizeof other);
        }
        uint32_t flags = HS_FLAG_SINGLEMATCH | (caseless ? HS_FLAG_CASELESS : 0);
        char factor[64];
        uint32_t n = regex_factor(g.rx, flags, factor, sizeof factor);
        if (strchr(g.rx, '|') && !strstr(g.rx, "(") && n) fail_msg("'%s': factor despite an alternation", g.rx);
        hs_database_t *db = NULL;
        hs_compile_error_t *err = NULL;
        if (hs_compile(g.rx, flags, HS_MODE_BLOCK, NULL, &db, &err) != HS_SUCCESS) {
            hs_free_compile_error(err); /* e.g. an empty-matching pattern: not something rules hold */
            continue;
        }
        assert_int_equal(hs_alloc_scratch(db, &scratch), HS_SUCCESS);
        factored += n > 0;
        for (uint32_t v = 0; v < 8; v++) {
            /* the sample, with text around it unless anchored */
            g.vl = 0;
            if (g.rx[0] != '^' && rnd(2))
                for (uint32_t k = rnd(4); k; k--) put_val(&g, alphabet[rnd(sizeof alphabet - 1)]);
            for (const char *s = sample; *s; s++) put_val(&g, *s);
            for (uint32_t k = rnd(4); k; k--) put_val(&g, alphabet[rnd(sizeof alphabet - 1)]);
            bool hit = false;
            assert_int_equal(hs_scan(db, g.val, (unsigned)g.vl, 0, scratch, on_hit, &hit) == HS_SUCCESS ||
                                 hit,
                             true);
            if (!hit) continue; /* the case-flipped sample of a cased expression, mostly */
            checked++;
            if (n && !contains_caseless(g.val, factor, n))
                fail_msg("'%s' matches '%s', which lacks its factor '%.*s'", g.rx, g.val, (int)n, factor);
        }
        hs_free_database(db);
    }
    hs_free_scratch(scratch);
    /* not vacuous */
    assert_true(factored > 1000);
    assert_true(checked > 5000);
}

static void test_factor_examples(void **state)
{
    (void)state;
    static const struct {
        const char *rx, *factor;
    } cases[] = {
        {"net\\s+view", "view"},
        {"(?i)\\.exe[\\\"\\']?\\s+[^\\\"]{0,64}werfaultsecure\\.exe", "werfaultsecure.exe"},
        {"ab+cd", "ab"},            /* b repeats: the run ends after one */
        {"abcx?yz", "abc"},         /* x is optional */
        {"a(?:bcd|efg)hij", "hij"}, /* groups break runs */
        {"abc|defgh", ""},          /* either side may match */
        {"0x[a-fA-F0-9]{8}", "0x"}, /* returned; too short for the caller to use */
        {"\\$env:ComSpec\\[", "$env:ComSpec["},
        {"[Rr][Uu][Nn]dll", "dll"},
        {"x{2}yz", "yz"},
    };
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(cases); i++) {
        char f[64];
        uint32_t n = regex_factor(cases[i].rx, HS_FLAG_SINGLEMATCH, f, sizeof f);
        const char *want = cases[i].factor;
        if (n != strlen(want) || memcmp(f, want, n))
            fail_msg("'%s': factor '%.*s', want '%s'", cases[i].rx, (int)n, f, want);
    }
    char f[64];
    assert_int_equal(regex_factor("kelvin", HS_FLAG_UTF8 | HS_FLAG_CASELESS, f, sizeof f), 0); /* U+212A folds to k */
    /* escapes of more than two bytes are not read as literals after them */
    static const char *const none[] = {"ab\\cAcd", "x\\0123", "ab\\x{41}cd", "a\\p{L}bcd", "ab\\Qcd.e\\E"};
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(none); i++)
        if (regex_factor(none[i], HS_FLAG_SINGLEMATCH, f, sizeof f) > 2) fail_msg("'%s': a factor", none[i]);
}

/* The factor becomes the trigger: a command line without it makes no candidate; with it,
 * the expression decides. */
static void test_factor_trigger(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, "title: t\nid: werfault\nlogsource:\n    category: process_creation\n    product: windows\n"
                     "detection:\n    sel:\n        CommandLine|re: '(?i)\\.exe\\s+\\d{2,10}\\s+werfaultsecure'\n"
                     "    condition: sel\n");
    harness_expect_loaded(&h, 1);
    static const struct {
        const char *command_line, *fires;
        uint64_t candidates;
    } cases[] = {
        {"a.exe 1234 WerFaultSecure", "werfault", 1},
        {"a.exe x WerFaultSecure", "", 1},
        {"a.exe 1234 werfault", "", 0},
    };
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(cases); i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                 "\"EventData\":{\"CommandLine\":\"%s\"}}}",
                 cases[i].command_line);
        detect_worker_stats before, after;
        detect_worker_stats_get(h.worker, &before);
        const char *ids[2];
        size_t n = harness_eval(&h, json, ids, 2);
        detect_worker_stats_get(h.worker, &after);
        if (strcmp(n ? ids[0] : "", cases[i].fires) || after.candidates - before.candidates != cases[i].candidates)
            fail_msg("'%s': fired %zu, %llu candidates", cases[i].command_line, n,
                     (unsigned long long)(after.candidates - before.candidates));
    }
    harness_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factor_in_every_match),
        cmocka_unit_test(test_factor_examples),
        cmocka_unit_test(test_factor_trigger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
