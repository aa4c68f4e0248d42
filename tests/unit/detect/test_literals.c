/* tests/unit/detect/test_literals.c — whole-value, startswith and endswith literals are
 * looked up without Hyperscan (detect/literal.c). These tests hold that path to the
 * specification: hundreds of random rules (exact, startswith, endswith, each also `cased`,
 * plus contains) over random values built from characters at the edges of ASCII case folding
 * ('@', 'Z', '[', '`', 'z', '{'), a backslash, a dot and a non-ASCII character without case
 * ('€'), checked against a plain reference implementation. Large contains sets stay on
 * Hyperscan; small ones (test_contains_sets_match_reference) are filtered by the literal
 * set's byte-pair filter, on field values and on keywords, over values long enough to cross
 * its 32-byte blocks. */
#include "detect/internal.h"
#include "helpers.h"

#include <stdint.h>

enum { MOD_EXACT = 0, MOD_STARTS, MOD_ENDS, MOD_CONTAINS, MOD_COUNT };

#define RULES 240
#define EVENTS 400
#define VALUE_MAX 24

static const char *const tokens[] = {"a", "A", "z", "Z", "@", "[", "`", "{", "\\", ".", "0", "€", "exe", "EXE"};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) { return xorshift_below(&rng_state, n); }

/* A random value of up to max tokens; no two backslashes in a row and none last (so the
 * Sigma text means exactly these bytes). */
static void random_value(char *out, size_t cap, uint32_t max)
{
    size_t len = 0;
    uint32_t n = rnd(max + 1);
    out[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        const char *t = tokens[rnd(MAMORI_ARRAY_LEN(tokens))];
        if (t[0] == '\\' && (len == 0 || out[len - 1] == '\\' || i + 1 == n)) continue;
        size_t tl = strlen(t);
        if (len + tl + 1 > cap) break;
        memcpy(out + len, t, tl + 1);
        len += tl;
    }
}

static bool same(const char *a, const char *b, size_t n, bool cased)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (!cased) {
            if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
            if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        }
        if (x != y) return false;
    }
    return true;
}

static bool reference(int mod, bool cased, const char *pattern, const char *value)
{
    size_t p = strlen(pattern), v = strlen(value);
    switch (mod) {
    case MOD_EXACT: return p == v && same(pattern, value, p, cased);
    case MOD_STARTS: return p <= v && same(pattern, value, p, cased);
    case MOD_ENDS: return p <= v && same(pattern, value + v - p, p, cased);
    default:
        for (size_t i = 0; i + p <= v; i++)
            if (same(pattern, value + i, p, cased)) return true;
        return false;
    }
}

struct rule {
    int mod;
    bool cased;
    char value[VALUE_MAX * 4];
};

static void test_literals_match_reference(void **state)
{
    (void)state;
    static struct rule rules[RULES];
    static char yaml[RULES * 256];
    size_t off = 0;
    static const char *const mods[] = {"", "|startswith", "|endswith", "|contains"};
    for (uint32_t r = 0; r < RULES; r++) {
        rules[r].mod = (int)(r % MOD_COUNT);
        rules[r].cased = (r / MOD_COUNT) % 3 == 1;
        do random_value(rules[r].value, sizeof rules[r].value, 6);
        while (rules[r].mod != MOD_EXACT && rules[r].value[0] == '\0'); /* '' with a modifier: any value */
        off += (size_t)snprintf(yaml + off, sizeof yaml - off,
                                "%stitle: t%u\nid: r%u\nlogsource:\n    category: process_creation\n    product: windows\n"
                                "detection:\n    selection:\n        CommandLine%s%s: '%s'\n    condition: selection\n",
                                r ? "---\n" : "", r, r, mods[rules[r].mod], rules[r].cased ? "|cased" : "", rules[r].value);
        assert_true(off < sizeof yaml);
    }
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, RULES);

    uint32_t matched = 0;
    for (uint32_t e = 0; e < EVENTS; e++) {
        /* values around the rules' own: their text, case changed, with something before/after */
        char value[VALUE_MAX * 16], pre[VALUE_MAX * 4], post[VALUE_MAX * 4];
        const struct rule *base = &rules[rnd(RULES)];
        random_value(pre, sizeof pre, rnd(3) ? 0 : 3);
        random_value(post, sizeof post, rnd(3) ? 0 : 3);
        snprintf(value, sizeof value, "%s%s%s", pre, rnd(4) ? base->value : "", post);
        for (char *c = value; *c; c++)
            if (rnd(2) && ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'))) *c ^= 0x20;
        if (rnd(10) == 0) random_value(value, sizeof value, 8);
        char escaped[sizeof value * 2], json[sizeof escaped + 512];
        size_t k = 0;
        for (const char *c = value; *c; c++) {
            if (*c == '\\') escaped[k++] = '\\';
            escaped[k++] = *c;
        }
        escaped[k] = '\0';
        snprintf(json, sizeof json,
                 "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"
                 "\"Computer\":\"ws1\",\"TimeCreated\":{\"#attributes\":{\"SystemTime\":\"2024-05-01T12:00:00Z\"}}},"
                 "\"EventData\":{\"CommandLine\":\"%s\"}}}",
                 escaped);
        static const char *ids[RULES];
        size_t n = harness_eval(&h, json, ids, RULES);
        bool fired[RULES] = {0};
        for (size_t i = 0; i < n; i++) fired[strtoul(ids[i] + 1, NULL, 10)] = true;
        for (uint32_t r = 0; r < RULES; r++) {
            bool want = reference(rules[r].mod, rules[r].cased, rules[r].value, value);
            if (want != fired[r])
                fprintf(stderr, "rule r%u (%s%s '%s') on '%s': engine %d, reference %d\n", r, mods[rules[r].mod],
                        rules[r].cased ? "|cased" : "", rules[r].value, value, fired[r], want);
            assert_int_equal(want, fired[r]);
            matched += want;
        }
    }
    assert_true(matched > EVENTS); /* the values do hit the rules */
    harness_fini(&h);
}

/* Lengths around the 8-byte key: prefixes/suffixes of 1..7, exactly 8 and longer, several
 * literals sharing their first or last 8 bytes, a value shorter than the literal. */
static void test_literal_key_lengths(void **state)
{
    (void)state;
    assert_true(sysmon1_fires("    selection:\n        Image|endswith:\n            - 'e'\n            - 'xyz'\n"
                              "    condition: selection\n",
                              "\"Image\":\"C:\\\\a.EXE\""));
    assert_true(sysmon1_fires("    selection:\n        Image|endswith:\n            - '\\rundll32.exe'\n"
                              "            - 'rundll32.exe'\n    condition: selection\n",
                              "\"Image\":\"C:\\\\x\\\\RUNDLL32.exe\""));
    assert_true(sysmon1_fires("    selection:\n        Image|endswith:\n            - '\\rundll32.exe'\n"
                              "            - 'xrundll32.exe'\n    condition: selection\n",
                              "\"Image\":\"rundll32.exe\"") == false);
    assert_true(sysmon1_fires("    selection:\n        Image|startswith: 'C:\\Windows\\System32\\'\n"
                              "    condition: selection\n",
                              "\"Image\":\"c:\\\\windows\\\\system32\\\\cmd.exe\""));
    assert_false(sysmon1_fires("    selection:\n        Image|startswith: 'C:\\Windows\\System32\\'\n"
                               "    condition: selection\n",
                               "\"Image\":\"C:\\\\Windows\\\\System3\""));
    assert_true(sysmon1_fires("    selection:\n        Image: 'C:\\Windows\\explorer.exe'\n    condition: selection\n",
                              "\"Image\":\"C:\\\\WINDOWS\\\\Explorer.EXE\""));
    assert_false(sysmon1_fires("    selection:\n        Image: 'C:\\Windows\\explorer.exe'\n    condition: selection\n",
                               "\"Image\":\"C:\\\\WINDOWS\\\\Explorer.EXEx\""));
    assert_true(sysmon1_fires("    selection:\n        Image: ''\n    condition: selection\n", "\"Image\":\"\""));
    assert_false(sysmon1_fires("    selection:\n        Image: ''\n    condition: selection\n", "\"Image\":\"x\""));
}

/* Random escaped JSON string of up to max tokens (long values cross the filter's blocks). */
static void random_json_value(char *escaped, size_t cap, uint32_t max, const struct rule *base)
{
    char value[VALUE_MAX * 64], part[VALUE_MAX * 8];
    value[0] = '\0';
    size_t len = 0;
    uint32_t parts = rnd(max + 1);
    for (uint32_t i = 0; i < parts; i++) {
        if (base && rnd(3) == 0) snprintf(part, sizeof part, "%s", base->value);
        else random_value(part, sizeof part, 4);
        size_t pl = strlen(part);
        if (len + pl + 1 >= sizeof value) break;
        memcpy(value + len, part, pl + 1);
        len += pl;
    }
    for (char *c = value; *c; c++)
        if (rnd(2) && ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'))) *c ^= 0x20;
    size_t k = 0;
    for (const char *c = value; *c && k + 3 < cap; c++) {
        if (*c == '\\') escaped[k++] = '\\';
        escaped[k++] = *c;
    }
    escaped[k] = '\0';
}

static void json_unescape(const char *in, char *out)
{
    for (; *in; in++) {
        if (*in == '\\') in++;
        *out++ = *in;
    }
    *out = '\0';
}

/* Appends rule r (a contains value on CommandLine, or a keyword) to yaml at *off. */
static void contains_rule_yaml(char *yaml, size_t size, size_t *off, uint32_t r, const struct rule *rule, bool keyword)
{
    if (keyword)
        *off += (size_t)snprintf(yaml + *off, size - *off,
                                 "%stitle: t%u\nid: r%u\nlogsource:\n    category: process_creation\n"
                                 "    product: windows\ndetection:\n    keywords:\n        - '%s'\n"
                                 "    condition: keywords\n",
                                 r ? "---\n" : "", r, r, rule->value);
    else
        *off += (size_t)snprintf(yaml + *off, size - *off,
                                 "%stitle: t%u\nid: r%u\nlogsource:\n    category: process_creation\n"
                                 "    product: windows\ndetection:\n    selection:\n        CommandLine|contains%s: "
                                 "'%s'\n    condition: selection\n",
                                 r ? "---\n" : "", r, r, rule->cased ? "|cased" : "", rule->value);
    assert_true(*off < size);
}

/* Evaluates json — a Sysmon event whose CommandLine is a and ParentCommandLine b (unescaped),
 * its other values `others` — and checks each of the count contains rules (ids r0…) against
 * the reference: a keyword matches any value of the record, never across two. Returns how
 * many fired. */
static uint32_t check_contains_rules(harness *h, const char *json, const struct rule *rules, uint32_t count,
                                     bool keywords, const char *a, const char *b, const char *const *others)
{
    static const char *ids[256];
    static bool fired[256];
    assert_true(count <= 256);
    size_t n = harness_eval(h, json, ids, count);
    memset(fired, 0, sizeof fired);
    for (size_t i = 0; i < n; i++) fired[strtoul(ids[i] + 1, NULL, 10)] = true;
    uint32_t matched = 0;
    for (uint32_t r = 0; r < count; r++) {
        bool want = reference(MOD_CONTAINS, rules[r].cased, rules[r].value, a);
        if (keywords) {
            want |= reference(MOD_CONTAINS, false, rules[r].value, b);
            for (const char *const *o = others; *o; o++) want |= reference(MOD_CONTAINS, false, rules[r].value, *o);
        }
        if (want != fired[r])
            fprintf(stderr, "%s r%u ('%s'%s) on '%s' / '%s': engine %d, reference %d\n",
                    keywords ? "keyword" : "CommandLine|contains", r, rules[r].value, rules[r].cased ? ", cased" : "",
                    a, b, fired[r], want);
        assert_int_equal(want, fired[r]);
        matched += want;
    }
    return matched;
}

/* A few contains values (both cased and caseless; for keywords and for a field): the literal
 * set's filter takes them; the engine must agree with the reference on every event. */
static void test_contains_sets_match_reference(void **state)
{
    (void)state;
    enum { SMALL = 6, ROUNDS = 12, EVENTS_PER_ROUND = 150 };
    uint32_t matched = 0;
    for (uint32_t round = 0; round < ROUNDS; round++) {
        bool keywords = round % 2 == 1;
        static struct rule rules[SMALL];
        static char yaml[SMALL * 512];
        size_t off = 0;
        for (uint32_t r = 0; r < SMALL; r++) {
            rules[r].mod = MOD_CONTAINS;
            rules[r].cased = !keywords && (r + round) % 3 == 1;
            do random_value(rules[r].value, sizeof rules[r].value, 4);
            while (strlen(rules[r].value) < 2 || (rules[r].value[strlen(rules[r].value) - 1] == '\\'));
            contains_rule_yaml(yaml, sizeof yaml, &off, r, &rules[r], keywords);
        }
        harness h;
        harness_init(&h, yaml);
        harness_expect_loaded(&h, SMALL);
        for (uint32_t e = 0; e < EVENTS_PER_ROUND; e++) {
            char a[VALUE_MAX * 130], b[VALUE_MAX * 130], json[sizeof a + sizeof b + 512];
            random_json_value(a, sizeof a, rnd(4) ? 12 : 40, &rules[rnd(SMALL)]);
            random_json_value(b, sizeof b, 6, &rules[rnd(SMALL)]);
            snprintf(json, sizeof json,
                     "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"
                     "\"Computer\":\"ws1\",\"TimeCreated\":{\"#attributes\":{\"SystemTime\":\"2024-05-01T12:00:00Z\"}}},"
                     "\"EventData\":{\"CommandLine\":\"%s\",\"ParentCommandLine\":\"%s\"}}}",
                     a, b);
            char va[sizeof a], vb[sizeof b];
            json_unescape(a, va);
            json_unescape(b, vb);
            static const char *const others[] = {"Microsoft-Windows-Sysmon/Operational", "ws1", "2024-05-01T12:00:00Z",
                                                 "1", "Microsoft-Windows-Sysmon", NULL};
            matched += check_contains_rules(&h, json, rules, SMALL, keywords, va, vb, others);
        }
        harness_fini(&h);
    }
    assert_true(matched > ROUNDS * EVENTS_PER_ROUND / 4);
}

/* A contains literal at every offset of values of every length up to 3 blocks of 64 (the
 * AVX2 filter tests two 32-byte blocks at once, then single blocks, then the value's last 33
 * bytes, or a zero-padded copy of a value shorter than that): found wherever it starts,
 * including pairs straddling the block edges. */
static void test_contains_every_offset(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, "title: t\nid: r1\nlogsource:\n    category: process_creation\n    product: windows\n"
                     "detection:\n    selection:\n        CommandLine|contains: 'zq7'\n    condition: selection\n");
    harness_expect_loaded(&h, 1);
    char value[200], json[512];
    for (size_t len = 3; len <= 195; len++)
        for (size_t pos = 0; pos <= len; pos++) {
            memset(value, 'a', len);
            value[len] = '\0';
            bool present = pos + 3 <= len;
            if (present) memcpy(value + pos, pos % 2 ? "ZQ7" : "zq7", 3);
            else if (len >= 2) value[len - 2] = 'z', value[len - 1] = 'q'; /* a prefix of it at the end */
            snprintf(json, sizeof json,
                     "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                     "\"EventData\":{\"CommandLine\":\"%s\"}}}",
                     value);
            if (harness_fires(&h, json) != present) fail_msg("len %zu pos %zu", len, pos);
        }
    harness_fini(&h);
}

/* Keywords over an event's values joined (detect/scan.c), one of them long (up to 5000 bytes,
 * the contains filter's last block overlapping the blocks before it; from JOIN_DIRECT_MIN on,
 * scanned where it lies when every keyword database is a literal set): found at every offset,
 * by the literal set ('zq7') and by Hyperscan ('ab*cd'), in a short value beside the long one,
 * and never across two values. */
static void long_value_event(char *json, size_t size, const char *command_line)
{
    snprintf(json, size,
             "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
             "\"EventData\":{\"Description\":\"short one\",\"CommandLine\":\"%s\",\"User\":\"u\"}}}",
             command_line);
}

static void test_keywords_in_long_values(void **state)
{
    (void)state;
    harness lit, hs;
    harness_init(&lit, "title: t\nid: r1\nlogsource:\n    product: windows\n"
                       "detection:\n    keywords:\n        - 'zq7'\n    condition: keywords\n");
    harness_init(&hs, "title: t\nid: r1\nlogsource:\n    product: windows\n"
                      "detection:\n    keywords:\n        - 'ab*cd'\n    condition: keywords\n");
    harness_expect_loaded(&lit, 1);
    harness_expect_loaded(&hs, 1);
    static char value[6000], json[6400];
    static const size_t lens[] = {240, 255, 256, 257, 258, 288, 289, 290, 320, 321, 333, 1000, 1023, 1024, 1025, 5000};
    _Static_assert(JOIN_DIRECT_MIN >= 240 && JOIN_DIRECT_MIN <= 5000, "lengths on both sides of it");
    for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
        size_t len = lens[l];
        for (size_t pos = 0; pos + 3 <= len; pos += pos < 40 || pos + 40 > len ? 1 : 37) {
            memset(value, 'a', len);
            value[len] = '\0';
            memcpy(value + pos, pos % 2 ? "ZQ7" : "zq7", 3);
            long_value_event(json, sizeof json, value);
            if (!harness_fires(&lit, json)) fail_msg("zq7: len %zu pos %zu", len, pos);
            memcpy(value + pos, "abcd", pos + 4 <= len ? 4 : 3);
            long_value_event(json, sizeof json, value);
            if (harness_fires(&hs, json) != (pos + 4 <= len)) fail_msg("ab*cd: len %zu pos %zu", len, pos);
        }
        /* the halves in two values, long and short either way round: no match */
        memset(value, 'x', len);
        value[len] = '\0';
        memcpy(value + len - 2, "ab", 2);
        snprintf(json, sizeof json,
                 "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                 "\"EventData\":{\"CommandLine\":\"%s\",\"ParentCommandLine\":\"cd zq\",\"User\":\"7\"}}}",
                 value);
        if (harness_fires(&hs, json) || harness_fires(&lit, json)) fail_msg("across values: len %zu", len);
        value[len - 2] = 'z', value[len - 1] = 'q';
        snprintf(json, sizeof json,
                 "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                 "\"EventData\":{\"ParentCommandLine\":\"xx ab\",\"CommandLine\":\"cd%s\",\"Image\":\"7 x\"}}}",
                 value);
        if (harness_fires(&hs, json) || harness_fires(&lit, json)) fail_msg("across values, short first: len %zu", len);
        /* in a short value, the long one without it */
        memset(value, 'x', len);
        snprintf(json, sizeof json,
                 "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                 "\"EventData\":{\"CommandLine\":\"%s\",\"ParentCommandLine\":\"x ZQ7 abxcd\"}}}",
                 value);
        if (!harness_fires(&hs, json) || !harness_fires(&lit, json)) fail_msg("in the short value: len %zu", len);
    }
    harness_fini(&lit);
    harness_fini(&hs);
}

/* Contains values of one and two bytes (detect/literal.c: single bytes by memchr, pairs by a
 * table when the substring filter has no bucket left), many of them with a few longer ones
 * (which go to Hyperscan), cased and caseless, on a field and as keywords: the engine agrees
 * with the reference on every event, and a pair never matches across two joined values. */
static void test_short_contains_match_reference(void **state)
{
    (void)state;
    static const char alphabet[] = "aAzZ@[`{0.-/ q7";
    enum { SHORT = 90, LONG = 12, TOTAL = SHORT + LONG, EVENTS_PER_ROUND = 300 };
    uint32_t matched = 0;
    for (int keywords = 0; keywords < 2; keywords++) {
        static struct rule rules[TOTAL];
        static char yaml[TOTAL * 400];
        size_t off = 0;
        for (uint32_t r = 0; r < TOTAL; r++) {
            rules[r].mod = MOD_CONTAINS;
            rules[r].cased = !keywords && r % 4 == 1;
            if (r < SHORT) {
                uint32_t len = 1 + r % 2;
                for (uint32_t k = 0; k < len; k++) rules[r].value[k] = alphabet[rnd(sizeof alphabet - 1)];
                rules[r].value[len] = '\0';
            } else {
                do random_value(rules[r].value, sizeof rules[r].value, 4);
                while (strlen(rules[r].value) < 3 || rules[r].value[strlen(rules[r].value) - 1] == '\\');
            }
            contains_rule_yaml(yaml, sizeof yaml, &off, r, &rules[r], keywords);
        }
        harness h;
        harness_init(&h, yaml);
        harness_expect_loaded(&h, TOTAL);
        for (uint32_t e = 0; e < EVENTS_PER_ROUND; e++) {
            /* short values (a few bytes: most pairs absent) and long ones (most present) */
            char a[400], b[64], json[1024];
            size_t la = rnd(4) ? rnd(6) : rnd(300), lb = rnd(8);
            for (size_t k = 0; k < la; k++) a[k] = rnd(16) ? alphabet[rnd(sizeof alphabet - 1)] : 'x';
            for (size_t k = 0; k < lb; k++) b[k] = alphabet[rnd(sizeof alphabet - 1)];
            a[la] = b[lb] = '\0';
            snprintf(json, sizeof json,
                     "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                     "\"EventData\":{\"CommandLine\":\"%s\",\"ParentCommandLine\":\"%s\"}}}",
                     a, b);
            static const char *const others[] = {"Microsoft-Windows-Sysmon/Operational", "1", "Microsoft-Windows-Sysmon",
                                                 NULL};
            matched += check_contains_rules(&h, json, rules, TOTAL, keywords, a, b, others);
        }
        harness_fini(&h);
    }
    assert_true(matched > EVENTS_PER_ROUND * 10);
}

/* A predicate that is not a rule's trigger is scanned lazily, when the rule is a candidate. A
 * value list's contains values of two bytes and longer ones go to different databases when
 * the substring filter is full (the longer ones to Hyperscan): the predicate must read both
 * (detect/compile.c lazy_lists; SigmaHQ-like random rules lost matches before it did). */
static void test_lazy_predicate_split_across_sets(void **state)
{
    (void)state;
    char yaml[8192];
    size_t off = 0;
    /* rule 0: its trigger is the rarer ParentCommandLine value; the CommandLine list is lazy */
    off += (size_t)snprintf(yaml + off, sizeof yaml - off,
                            "title: t\nid: r0\nlogsource:\n    category: process_creation\n    product: windows\n"
                            "detection:\n    trigger:\n        ParentCommandLine|contains: 'qqzzqqzzqq'\n"
                            "    lazy:\n        CommandLine|contains:\n            - 'long value x'\n"
                            "            - 'ab'\n            - 'k'\n    condition: trigger and lazy\n");
    /* more lazy CommandLine contains values: the filter cannot hold them all */
    static const char *const more[] = {"c1:", "d2;", "e3|", "f4@", "g5[", "h6`", "i7{", "j8}", "k9~", "lA^"};
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(more); i++)
        off += (size_t)snprintf(yaml + off, sizeof yaml - off,
                                "---\ntitle: t\nid: m%zu\nlogsource:\n    category: process_creation\n"
                                "    product: windows\ndetection:\n    trigger:\n        ParentCommandLine|contains: "
                                "'qqzzqqzzqq'\n    lazy:\n        CommandLine|contains: '%s'\n"
                                "    condition: trigger and lazy\n",
                                i, more[i]);
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 1 + MAMORI_ARRAY_LEN(more));
    static const struct {
        const char *command_line;
        bool fires;
    } cases[] = {{"xx AB xx", true}, {"a LONG VALUE X", true}, {"K", true}, {"a b", false}, {"", false}};
    /* a string is answered from the predicate's own literals (detect/lazy.c); an array of
     * strings, by scanning the lazy databases */
    for (size_t i = 0; i < 2 * MAMORI_ARRAY_LEN(cases); i++) {
        size_t c = i % MAMORI_ARRAY_LEN(cases);
        bool array = i >= MAMORI_ARRAY_LEN(cases);
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                 "\"EventData\":{\"CommandLine\":%s\"%s\"%s,\"ParentCommandLine\":\"x qqzzqqzzqq\"}}}",
                 array ? "[\"-\", " : "", cases[c].command_line, array ? "]" : "");
        const char *ids[16];
        size_t n = harness_eval(&h, json, ids, 16);
        bool fired = false;
        for (size_t k = 0; k < n; k++) fired |= !strcmp(ids[k], "r0");
        if (fired != cases[c].fires) fail_msg("'%s' (%s): fired %d", cases[c].command_line, array ? "in an array" : "a string", fired);
    }
    detect_worker_stats st;
    detect_worker_stats_get(h.worker, &st);
    assert_true(st.lazy_direct > 0 && st.lazy_scans > 0); /* both ways taken */
    harness_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contains_sets_match_reference),
        cmocka_unit_test(test_contains_every_offset),
        cmocka_unit_test(test_keywords_in_long_values),
        cmocka_unit_test(test_literals_match_reference),
        cmocka_unit_test(test_literal_key_lengths),
        cmocka_unit_test(test_short_contains_match_reference),
        cmocka_unit_test(test_lazy_predicate_split_across_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
