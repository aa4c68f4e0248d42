/* tests/unit/detect/test_lazy.c — lazy predicates (the non-trigger side of a rule) answered
 * from the value itself, without scanning their lazy database (detect/lazy.c): plain
 * literals compared one by one, star wildcards by their segments, many contains values by a
 * literal set of the predicate's own, anything else (`re`, `?`, windash) by a Hyperscan
 * database of the predicate's own; arrays (and values past the budget) fall back to the database scan.
 * Every answer must be the one the rule gets when the same predicate is its trigger, scanned
 * eagerly by the databases every event goes through. Hundreds of random predicates over
 * random values built from characters at the edges of ASCII case folding check exactly that:
 * rule eN holds the predicate alone, rule lN the same predicate behind a rare trigger. */
#include "helpers.h"

#include <stdint.h>

#define RULES 300
#define EVENTS 1500
#define VALUES_MAX 6

static const char *const tokens[] = {"a", "A", "z", "Z", "@", "[", "`", "{", "\\", ".", "0", "1", "€", "exe", "-e", "/E"};

static uint64_t rng_state = 0xD1B54A32D192ED03ull;
static uint32_t rnd(uint32_t n) { return xorshift_below(&rng_state, n); }

/* Random Sigma text of up to max tokens, with `*` (wild 1) or `*` and `?` (wild 2); a
 * backslash is never last, doubled or before a wildcard, so the text means exactly its
 * bytes and wildcards. */
static void random_text(char *out, size_t cap, uint32_t max, int wild)
{
    size_t len = 0;
    uint32_t n = 1 + rnd(max);
    out[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        const char *t = wild && rnd(3) == 0 ? (wild == 1 || rnd(2) ? "*" : "?") : tokens[rnd(MAMORI_ARRAY_LEN(tokens))];
        if (len && out[len - 1] == '\\' && (t[0] == '\\' || t[0] == '*' || t[0] == '?')) continue;
        if (t[0] == '\\' && i + 1 == n) continue;
        size_t tl = strlen(t);
        if (len + tl + 1 > cap) break;
        memcpy(out + len, t, tl + 1);
        len += tl;
    }
}

/* Regular expressions over the same characters (re, re|i). */
static const char *const regexes[] = {"a.?z", "[az]\\\\", "^a", "e$", "z{2}", "(?:0|1)\\\\.", "\\\\.exe$", "^[^a]"};

struct pred {
    char yaml[512]; /* the predicate's YAML line(s) under a search identifier */
    char values[VALUES_MAX][64];
    uint32_t value_count;
};

static void random_pred(struct pred *p, uint32_t r)
{
    static const char *const mods[] = {"", "|contains", "|startswith", "|endswith", "|contains|cased", "|endswith|cased",
                                       "|re", "|re|i", "|windash|contains", "|contains|all"};
    const char *mod = mods[r % MAMORI_ARRAY_LEN(mods)];
    bool re = strstr(mod, "|re") != NULL;
    /* a few long lists: past the literal budget, and into a literal set of their own */
    p->value_count = r % 17 == 0 ? VALUES_MAX : 1 + rnd(3);
    size_t off = (size_t)snprintf(p->yaml, sizeof p->yaml, "        CommandLine%s:\n", mod);
    for (uint32_t i = 0; i < p->value_count; i++) {
        if (re) snprintf(p->values[i], sizeof p->values[i], "%s", regexes[rnd(MAMORI_ARRAY_LEN(regexes))]);
        else random_text(p->values[i], sizeof p->values[i], 5, strchr(mod, 'w') ? 0 : (int)rnd(4) % 3);
        off += (size_t)snprintf(p->yaml + off, sizeof p->yaml - off, "            - '%s'\n", p->values[i]);
    }
}

/* s as the body of a JSON string (out: at least 2 * strlen(s) + 1 bytes). */
static void json_escape(const char *s, char *out)
{
    size_t k = 0;
    for (const char *c = s; *c; c++) {
        if (*c == '\\') out[k++] = '\\';
        out[k++] = *c;
    }
    out[k] = '\0';
}

/* An event value near one of the predicate's: its wildcards filled, case flipped, text around
 * it; now and then unrelated, long (past the budget), a number or a list. */
static void event_value(const struct pred *p, char *json, size_t cap)
{
    char v[1024];
    size_t n = 0;
    const char *base = p->values[rnd(p->value_count)];
    char pre[64], post[64];
    random_text(pre, sizeof pre, 3, 0);
    random_text(post, sizeof post, 3, 0);
    if (rnd(3)) n += (size_t)snprintf(v + n, sizeof v - n, "%s", pre);
    for (const char *c = base; *c && n + 8 < sizeof v; c++) {
        if (*c == '*') { /* nothing, or some text */
            for (uint32_t k = rnd(3); k && n + 8 < sizeof v; k--) v[n++] = "aZ\\e."[rnd(5)];
            continue;
        }
        if (*c == '?') v[n++] = "aZ.\\"[rnd(4)];
        else v[n++] = (char)(((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')) && rnd(2) ? *c ^ 0x20 : *c);
    }
    v[n] = '\0';
    if (rnd(3)) n += (size_t)snprintf(v + n, sizeof v - n, "%s", post);
    if (rnd(12) == 0) n = (size_t)snprintf(v, sizeof v, "%s", pre);
    if (rnd(10) == 0) { /* long: searched 32 positions at a time, or past the budget */
        for (size_t to = 33 + rnd(900); n < to;) v[n++] = "xyz"[rnd(3)];
        v[n] = '\0';
        n += (size_t)snprintf(v + n, sizeof v - n, "%s", base);
    }
    char escaped[2200], escaped_pre[160];
    json_escape(v, escaped);
    json_escape(pre, escaped_pre);
    uint32_t shape = rnd(20);
    if (shape == 0) snprintf(json, cap, "%u", rnd(3) ? 10u : 1001u);
    else if (shape == 1) snprintf(json, cap, "[\"%s\", \"%s\"]", escaped, escaped_pre);
    else snprintf(json, cap, "\"%s\"", escaped);
}

/* Appends rule e<i> (the selection `sel`, YAML lines under `sel:`, alone: its trigger) when
 * eager is set, and rule l<i> (the same behind a rare ParentCommandLine trigger: lazy). */
static void add_rules(char *yaml, size_t cap, size_t *off, size_t i, const char *sel, bool eager)
{
    if (eager)
        *off += (size_t)snprintf(yaml + *off, cap - *off,
                                 "%stitle: t\nid: e%zu\nlogsource:\n    category: process_creation\n    product: windows\n"
                                 "detection:\n    sel:\n%s    condition: sel\n",
                                 *off ? "---\n" : "", i, sel);
    *off += (size_t)snprintf(yaml + *off, cap - *off,
                             "%stitle: t\nid: l%zu\nlogsource:\n    category: process_creation\n    product: windows\n"
                             "detection:\n    trigger:\n        ParentCommandLine: 'qqzzqqzzqqzzqqzzqqzzqqzz'\n"
                             "    sel:\n%s    condition: trigger and sel\n",
                             *off ? "---\n" : "", i, sel);
    assert_true(*off < cap);
}

/* add_rules for the selection `CommandLine<mod>: 'value'`. */
static void add_command_line_rules(char *yaml, size_t cap, size_t *off, size_t i, const char *mod, const char *value,
                                   bool eager)
{
    char sel[128];
    snprintf(sel, sizeof sel, "        CommandLine%s: '%s'\n", mod, value);
    add_rules(yaml, cap, off, i, sel, eager);
}

/* A Sysmon process start with the lazy rules' trigger, its CommandLine the JSON text
 * command_line (a quoted string or an array). */
static void process_start(char *json, size_t cap, const char *command_line)
{
    int n = snprintf(json, cap,
                     "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"
                     "\"Computer\":\"ws1\"},\"EventData\":{\"CommandLine\":%s,"
                     "\"ParentCommandLine\":\"qqzzqqzzqqzzqqzzqqzzqqzz\"}}}",
                     command_line);
    assert_true(n > 0 && (size_t)n < cap);
}

/* Whether rule <kind><i> is among ids[0..n). */
static bool fired(const char *const *ids, size_t n, char kind, size_t i)
{
    char id[24];
    snprintf(id, sizeof id, "%c%zu", kind, i);
    for (size_t k = 0; k < n; k++)
        if (!strcmp(ids[k], id)) return true;
    return false;
}

static void test_lazy_answers_match_eager(void **state)
{
    (void)state;
    static struct pred preds[RULES];
    static char yaml[RULES * 2 * 1024];
    size_t off = 0;
    for (uint32_t r = 0; r < RULES; r++) {
        random_pred(&preds[r], r);
        add_rules(yaml, sizeof yaml, &off, r, preds[r].yaml, true);
    }
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 2 * RULES);

    uint32_t fired_total = 0;
    for (uint32_t e = 0; e < EVENTS; e++) {
        char value[2400], json[3000];
        event_value(&preds[rnd(RULES)], value, sizeof value);
        process_start(json, sizeof json, value);
        static const char *ids[2 * RULES];
        size_t n = harness_eval(&h, json, ids, 2 * RULES);
        static bool eager[RULES], lazy[RULES];
        memset(eager, 0, sizeof eager);
        memset(lazy, 0, sizeof lazy);
        for (size_t i = 0; i < n; i++) (ids[i][0] == 'e' ? eager : lazy)[strtoul(ids[i] + 1, NULL, 10)] = true;
        for (uint32_t r = 0; r < RULES; r++) {
            if (eager[r] != lazy[r])
                fail_msg("CommandLine %s: rule %u (%s) eager %d, lazy %d", value, r, preds[r].yaml, eager[r], lazy[r]);
            fired_total += eager[r];
        }
    }
    detect_worker_stats st;
    detect_worker_stats_get(h.worker, &st);
    /* not vacuous: rules fired, most lazy questions were answered directly, some by scans */
    assert_true(fired_total > EVENTS / 2);
    assert_true(st.lazy_direct > (uint64_t)EVENTS * RULES / 2);
    assert_true(st.lazy_scans > 0);
    harness_fini(&h);
}

/* Wildcards whose segments overlap, repeat or touch the anchors, by hand. */
static void test_wildcard_segments(void **state)
{
    (void)state;
    static const struct {
        const char *mod, *value, *event;
        bool fires;
    } cases[] = {
        {"|contains", "a*a", "a", false},         {"|contains", "a*a", "xAax", true},
        {"|contains", "aba*aba", "ababa", false}, {"|contains", "aba*aba", "abaABA", true},
        {"", "ab*b", "ab", false},                {"", "ab*b", "abb", true},
        {"", "ab*b", "abxb", true},               {"", "ab*b", "xabb", false},
        {"", "ab*b", "abbx", false},              {"|startswith", "a*b", "ba", false},
        {"|startswith", "a*b", "a-bc", true},     {"|endswith", "a*b", "xab", true},
        {"|endswith", "a*b", "abx", false},       {"", "a**b", "ab", true},
        {"", "a*b*c", "acb", false},              {"", "a*b*c", "abcc", true},
        {"|contains|cased", "A*b", "ab", false},  {"|contains|cased", "A*b", "xAyb", true},
        {"", "x*", "X", true},                    {"|endswith", "*.exe*x", ".exex", true},
    };
    char yaml[16384];
    size_t off = 0;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(cases); i++)
        add_command_line_rules(yaml, sizeof yaml, &off, i, cases[i].mod, cases[i].value, true);
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 2 * MAMORI_ARRAY_LEN(cases));
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(cases); i++) {
        char value[64], json[512];
        snprintf(value, sizeof value, "\"%s\"", cases[i].event);
        process_start(json, sizeof json, value);
        const char *ids[64];
        size_t n = harness_eval(&h, json, ids, 64);
        bool eager = fired(ids, n, 'e', i), lazy = fired(ids, n, 'l', i);
        if (eager != cases[i].fires || lazy != cases[i].fires)
            fail_msg("CommandLine%s '%s' on '%s': eager %d, lazy %d, want %d", cases[i].mod, cases[i].value,
                     cases[i].event, eager, lazy, cases[i].fires);
    }
    detect_worker_stats st;
    detect_worker_stats_get(h.worker, &st);
    assert_true(st.lazy_direct >= MAMORI_ARRAY_LEN(cases)); /* answered here, not by scans */
    assert_int_equal(st.lazy_scans, 0);
    harness_fini(&h);
}

/* Contains values searched in long values (detect/lazy.c find: 32 positions at a time, the
 * rest one by one): the needle at every place of values of lengths around the block sizes, in
 * either case, next to near misses that share its first and last bytes. */
static void test_long_value_search(void **state)
{
    (void)state;
    static const struct {
        const char *value, *cased; /* the rule's value, and whether |cased */
    } needles[] = {{"qxe", ""}, {"Q\\x.E", ""}, {"ab", "|cased"}, {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzq", ""}};
    static const char *const found[] = {"QXE", "q\\\\X.e", "ab", "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZQ"};
    static const char *const missed[] = {"qye", "q\\\\x,e", "aB", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"};
    char yaml[4096];
    size_t off = 0;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(needles); i++) {
        char mod[32];
        snprintf(mod, sizeof mod, "|contains%s", needles[i].cased);
        add_command_line_rules(yaml, sizeof yaml, &off, i, mod, needles[i].value, false);
    }
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, MAMORI_ARRAY_LEN(needles));
    static const size_t lens[] = {31, 32, 33, 40, 63, 64, 65, 70, 96, 97, 300};
    uint32_t checked = 0;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(needles); i++) {
        size_t n = strlen(found[i]) - (i == 1); /* the JSON escape \\ is one byte */
        for (size_t li = 0; li < MAMORI_ARRAY_LEN(lens); li++) {
            size_t len = lens[li] + n;
            for (size_t at = 0; at + n <= len; at += at < 40 || at + n + 40 > len ? 1 : 7) {
                for (int hit = 0; hit < 2; hit++) {
                    char value[512], json[1024];
                    size_t k = 0;
                    value[k++] = '"';
                    for (; k < at + 1; k++) value[k] = "zq-"[k % 3]; /* first and last bytes of some needles */
                    k += (size_t)snprintf(value + k, sizeof value - k, "%s", hit ? found[i] : missed[i]);
                    for (; k < len + 1 + (i == 1); k++) value[k] = "qz."[k % 3];
                    value[k++] = '"';
                    value[k] = '\0';
                    process_start(json, sizeof json, value);
                    const char *ids[8];
                    bool got = fired(ids, harness_eval(&h, json, ids, 8), 'l', i);
                    /* the filler can spell the long needle too (the others it cannot): then it fires anyway */
                    bool expect = hit || (i == 3 && strstr(value, needles[3].value));
                    if (got != expect)
                        fail_msg("CommandLine|contains%s '%s' in %zu bytes at %zu (%s): fired %d", needles[i].cased,
                                 needles[i].value, len, at, hit ? "placed" : "near miss", got);
                    checked++;
                }
            }
        }
    }
    detect_worker_stats st;
    detect_worker_stats_get(h.worker, &st);
    assert_true(checked > 1000);
    assert_int_equal(st.lazy_scans, 0); /* every one answered by the search */
    harness_fini(&h);
}

/* A user regular expression beside a literal side of its AND waits for the literal (it is
 * asked only of candidates, by its own database); alone, it makes its rule a candidate. */
static void test_regex_side_waits(void **state)
{
    (void)state;
    const char *yaml =
        "title: t\nid: guid\nlogsource:\n    category: process_creation\n    product: windows\n"
        "detection:\n    a:\n        CommandLine|re: '[A-F0-9]{8}-[A-F0-9]{4}-[A-F0-9]{4}'\n"
        "    b:\n        CommandLine|contains: 'qlogin'\n    condition: a and b\n"
        "---\ntitle: t\nid: hex\nlogsource:\n    category: process_creation\n    product: windows\n"
        "detection:\n    sel:\n        Image|endswith: '\\ping.exe'\n        CommandLine|re: '0x[a-fA-F0-9]{8}'\n"
        "    condition: sel\n"
        "---\ntitle: t\nid: domain\nlogsource:\n    category: process_creation\n    product: windows\n"
        "detection:\n    sel:\n        Image|endswith: '\\net.exe'\n        CommandLine|re: 'net\\s+group\\s+/domain'\n"
        "    condition: sel\n"
        "---\ntitle: t\nid: view\nlogsource:\n    category: process_creation\n    product: windows\n"
        "detection:\n    sel:\n        CommandLine|re: '(?i)net\\s+view'\n    condition: sel\n";
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 4);
    static const struct {
        const char *image, *command_line, *fires;
        uint64_t candidates;
    } cases[] = {
        {"C:\\\\w\\\\cmd.exe", "x DEADBEEF-1234-ABCD 0x0A0B0C0D", "", 0}, /* both regexes, neither literal */
        {"C:\\\\w\\\\cmd.exe", "qlogin DEADBEEF-1234-ABCD", "guid", 1},
        {"C:\\\\w\\\\cmd.exe", "qlogin x", "", 1},
        {"C:\\\\w\\\\PING.EXE", "ping 0x0A0B0C0D", "hex", 1},
        {"C:\\\\w\\\\ping.exe", "ping 10.0.0.1", "", 1},
        {"C:\\\\w\\\\cmd.exe", "NET  View", "view", 1},
        /* alone, the expression's required literal ('view', test_factor.c) is the trigger */
        {"C:\\\\w\\\\cmd.exe", "network view", "", 1},
        {"C:\\\\w\\\\cmd.exe", "net users", "", 0},
        /* a long literal run in a regex, against a common field's short suffix: still the suffix */
        {"C:\\\\w\\\\cmd.exe", "net group /domain", "", 0},
        {"C:\\\\w\\\\net.exe", "net  group  /domain", "domain", 1},
    };
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(cases); i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                 "\"EventData\":{\"Image\":\"%s\",\"CommandLine\":\"%s\"}}}",
                 cases[i].image, cases[i].command_line);
        detect_worker_stats before, after;
        detect_worker_stats_get(h.worker, &before);
        const char *ids[4];
        size_t n = harness_eval(&h, json, ids, 4);
        detect_worker_stats_get(h.worker, &after);
        const char *fired = n ? ids[0] : "";
        if (n > 1 || strcmp(fired, cases[i].fires) || after.candidates - before.candidates != cases[i].candidates)
            fail_msg("'%s': fired %zu (%s), %llu candidates, want %s and %llu", cases[i].command_line, n, fired,
                     (unsigned long long)(after.candidates - before.candidates), cases[i].fires,
                     (unsigned long long)cases[i].candidates);
    }
    harness_fini(&h);
}

/* A Sysmon process start and what the one rule of `yaml` must do with it: fire or not, after
 * how many lazy answers (searches of a value), being a candidate in every case. */
struct order_case {
    const char *image, *parent, *command_line;
    bool fires;
    uint64_t searches;
};

static void check_order(const char *yaml, const struct order_case *cases, size_t count)
{
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 1);
    for (size_t i = 0; i < count; i++) {
        const struct order_case *c = &cases[i];
        char json[512];
        snprintf(json, sizeof json,
                 "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                 "\"EventData\":{\"Image\":\"%s\",\"ParentImage\":\"%s\",\"CommandLine\":\"%s\"}}}",
                 c->image, c->parent, c->command_line);
        detect_worker_stats before, after;
        detect_worker_stats_get(h.worker, &before);
        const char *ids[4];
        size_t n = harness_eval(&h, json, ids, 4);
        detect_worker_stats_get(h.worker, &after);
        uint64_t searches = after.lazy_direct - before.lazy_direct + after.lazy_scans - before.lazy_scans;
        if ((n == 1) != c->fires || after.candidates - before.candidates != 1 || searches != c->searches)
            fail_msg("'%s' under '%s' running '%s': fired %zu, %llu candidates, %llu searches; want %d, 1, %llu",
                     c->image, c->parent, c->command_line, n,
                     (unsigned long long)(after.candidates - before.candidates), (unsigned long long)searches,
                     c->fires, (unsigned long long)c->searches);
    }
    harness_fini(&h);
}

/* The sides of an AND or OR that only read bits the walk set are asked before the sides that
 * search (detect/eval_plan.c order_kids): a contains|all selection whose eagerly scanned value is
 * missing is false without searching for its other values. The rule is a candidate through the
 * other selection's trigger (`powershell`); results are those of the rule's own order. */
static void test_bit_readers_first(void **state)
{
    (void)state;
    static const struct order_case cases[] = {
        /* Image only: FromBase64String is missing (the rule's order: 2) */
        {"C:\\\\w\\\\cmd.exe", "C:\\\\w\\\\services.exe", "powershell -nop x", false, 1},
        {"C:\\\\w\\\\cmd.exe", "C:\\\\w\\\\services.exe", "powershell -nop [FromBase64String]", true, 1},
        {"C:\\\\w\\\\cmd.exe", "C:\\\\w\\\\services.exe", "powershell [frombase64string]", false, 2},
        {"C:\\\\w\\\\wscript.exe", "C:\\\\w\\\\services.exe", "powershell x", true, 1},
    };
    check_order("title: t\nid: order\nlogsource:\n    category: process_creation\n    product: windows\n"
                "detection:\n    sel_a:\n        CommandLine|contains|all:\n            - '-nop'\n"
                "            - 'FromBase64String'\n    sel_b:\n        CommandLine|contains: 'powershell'\n"
                "        Image|endswith: '\\wscript.exe'\n    condition: 1 of sel_*\n",
                cases, MAMORI_ARRAY_LEN(cases));
}

/* In an AND, a negation that searches is asked last: `not filter and sel` asks sel first,
 * and a false sel spares the filter's search (detect/eval_plan.c order_kids). */
static void test_negations_last(void **state)
{
    (void)state;
    static const struct order_case cases[] = {
        {"C:\\\\w\\\\cmd.exe", "C:\\\\w\\\\cmd.exe", "powershell x", false, 1}, /* sel false: no filter search (was 2) */
        {"C:\\\\w\\\\wscript.exe", "C:\\\\w\\\\explorer.exe", "powershell x", false, 2}, /* filtered: one more (was 1) */
        {"C:\\\\w\\\\wscript.exe", "C:\\\\w\\\\cmd.exe", "powershell x", true, 2},
    };
    check_order("title: t\nid: neg\nlogsource:\n    category: process_creation\n    product: windows\n"
                "detection:\n    sel:\n        CommandLine|contains: 'powershell'\n"
                "        Image|endswith: '\\wscript.exe'\n    filter:\n"
                "        ParentImage|endswith: '\\explorer.exe'\n    condition: not filter and sel\n",
                cases, MAMORI_ARRAY_LEN(cases));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_answers_match_eager),
        cmocka_unit_test(test_wildcard_segments),
        cmocka_unit_test(test_long_value_search),
        cmocka_unit_test(test_regex_side_waits),
        cmocka_unit_test(test_bit_readers_first),
        cmocka_unit_test(test_negations_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
