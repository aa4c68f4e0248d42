/* tests/unit/detect/test_lines.c — long values scanned line by line (detect/scan.c scan_lines,
 * compile_db.c split_lines) fire exactly what a scan of the whole value fires.
 *
 * A database whose expressions are contains literals without '\n' may scan a long value in
 * pieces ending after a '\n', its long lines through the scan memo. A large database holding a
 * few other expressions (wildcards, whose `*` crosses lines) is split: those few scan the whole
 * value — only when a line holds a required literal of theirs, if each has one ("gated") — and
 * the others scan by line. Each rule set here holds 320 contains values on CommandLine (a
 * Hyperscan database large enough to be split) and one wildcard rule; events carry multi-line
 * command lines built from repeating long lines and short ones, tokens in either, tokens cut
 * by a newline (no match: the literal holds no '\n'), and the wildcard's parts on different
 * lines (a match). An oracle computes what each rule must do on the whole value. */
#include "helpers.h"

#include <ctype.h>

#define GROUPS 40 /* rules of 8 contains values each */
#define PER_GROUP 8
#define TOKENS (GROUPS * PER_GROUP)

static void token(char *out, unsigned t) { snprintf(out, 16, "tq%03uk%c", t, "xyzw"[t % 4]); }

/* The rule set: GROUPS rules "G<i>", then the wildcard rule "W" (CommandLine|contains: wild). */
static char *rules_yaml(const char *wild)
{
    size_t cap = 200000, len = 0;
    char *y = mamori_xmalloc(cap);
    for (unsigned g = 0; g < GROUPS; g++) {
        len += (size_t)snprintf(y + len, cap - len,
                                "title: G%u\nid: G%u\nlogsource:\n    category: process_creation\n    product: windows\n"
                                "detection:\n    sel:\n        CommandLine|contains:\n",
                                g, g);
        for (unsigned k = 0; k < PER_GROUP; k++) {
            char t[16];
            token(t, g * PER_GROUP + k);
            len += (size_t)snprintf(y + len, cap - len, "            - '%s'\n", t);
        }
        len += (size_t)snprintf(y + len, cap - len, "    condition: sel\n---\n");
    }
    snprintf(y + len, cap - len,
             "title: W\nid: W\nlogsource:\n    category: process_creation\n    product: windows\n"
             "detection:\n    sel:\n        CommandLine|contains: '%s'\n    condition: sel\n",
             wild);
    return y;
}

/* What must fire on cmd: bit g for group g, bit GROUPS for W (wild is "a*b": a, then b),
 * every comparison caseless (tokens, a and b are lowercase). */
static void oracle(const char *cmd, const char *a, const char *b, uint64_t *groups, bool *w)
{
    static char low[20000];
    size_t n = 0;
    for (; cmd[n] && n + 1 < sizeof low; n++) low[n] = (char)tolower((unsigned char)cmd[n]);
    low[n] = '\0';
    *groups = 0;
    for (unsigned t = 0; t < TOKENS; t++) {
        char tok[16];
        token(tok, t);
        if (strstr(low, tok)) *groups |= (uint64_t)1 << (t / PER_GROUP);
    }
    const char *pa = strstr(low, a);
    *w = pa && strstr(pa + strlen(a), b);
}

/* JSON string body of s (backslash, quote, CR and LF escaped). */
static void json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < cap; s++) {
        if (*s == '\n' || *s == '\r') {
            out[o++] = '\\';
            out[o++] = *s == '\n' ? 'n' : 'r';
        } else {
            if (*s == '\\' || *s == '"') out[o++] = '\\';
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

static void fired(harness *h, const char *cmd, uint64_t *groups, bool *w)
{
    static char esc[40000], json[41000];
    json_escape(esc, sizeof esc, cmd);
    snprintf(json, sizeof json,
             "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"
             "\"Computer\":\"ws1\"},\"EventData\":{\"CommandLine\":\"%s\",\"Image\":\"C:\\\\x.exe\"}}}",
             esc);
    const char *ids[GROUPS + 1];
    size_t n = harness_eval(h, json, ids, GROUPS + 1);
    *groups = 0;
    *w = false;
    for (size_t i = 0; i < n; i++) {
        if (ids[i][0] == 'W') *w = true;
        else *groups |= (uint64_t)1 << atoi(ids[i] + 1);
    }
}

/* A command line of a few lines: long ones from a small repeating set (some holding a token),
 * short ones, now and then a token cut by a newline, and the wildcard's parts a and b on
 * lines of their own. Over 512 bytes, so that it is scanned by line. */
static void command_line(char *out, size_t cap, uint64_t *rng, const char *a, const char *b)
{
    size_t len = 0;
    unsigned lines = 3 + xorshift_below(rng, 6);
    for (unsigned l = 0; l < lines; l++) {
        char tok[16];
        token(tok, xorshift_below(rng, TOKENS));
        unsigned kind = xorshift_below(rng, 10);
        if (kind < 4) { /* long, from 12 shapes: repeats, so replayed from the memo */
            unsigned shape = xorshift_below(rng, 12), n = 260 + shape * 37;
            char fill = (char)('a' + shape);
            for (unsigned i = 0; i < n && len + 1 < cap; i++) out[len++] = fill;
            if (shape % 3 == 0) { /* a token inside, at a place that depends on the shape */
                size_t at = len - n + shape * 11;
                memcpy(out + at, tok, strlen(tok));
            }
        } else if (kind < 7) { /* short, with a token now and then */
            if (kind == 4 && xorshift_below(rng, 2)) /* caseless: the token in capitals */
                for (char *c = tok; *c; c++) *c = (char)toupper((unsigned char)*c);
            len += (size_t)snprintf(out + len, cap - len, "short %u %s", xorshift_below(rng, 50),
                                    kind == 4 ? tok : "plain");
        } else if (kind == 7) { /* a token cut by the newline: no match */
            size_t n = strlen(tok), cut = 1 + xorshift_below(rng, (uint32_t)n - 1);
            len += (size_t)snprintf(out + len, cap - len, "cut %.*s\n%s", (int)cut, tok, tok + cut);
        } else if (kind == 8) {
            len += (size_t)snprintf(out + len, cap - len, "then %s here", a);
        } else {
            len += (size_t)snprintf(out + len, cap - len, "and %s there", b);
        }
        if (len + 3 < cap) {
            if (xorshift_below(rng, 4) == 0) out[len++] = '\r';
            out[len++] = '\n';
        }
    }
    while (len < 600 && len + 1 < cap) out[len++] = '-'; /* long enough to go by line */
    out[len] = '\0';
}

static void check_rule_set(const char *wild, const char *a, const char *b)
{
    char *yaml = rules_yaml(wild);
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, GROUPS + 1);
    uint64_t rng = 0x9E3779B97F4A7C15ull, seen = 0;
    unsigned wild_fired = 0;
    static char cmd[20000];
    for (unsigned i = 0; i < 2000; i++) {
        command_line(cmd, sizeof cmd, &rng, a, b);
        uint64_t want, got;
        bool want_w, got_w;
        oracle(cmd, a, b, &want, &want_w);
        fired(&h, cmd, &got, &got_w);
        if (got != want || got_w != want_w) fprintf(stderr, "event %u: %s\n", i, cmd);
        assert_int_equal(got, want);
        assert_int_equal(got_w, want_w);
        seen |= got;
        wild_fired += got_w;
    }
    assert_true(seen != 0 && wild_fired > 0 && wild_fired < 2000);
    detect_worker_stats st;
    detect_worker_stats_get(h.worker, &st);
    assert_true(st.line_hits > 1000); /* the database went by line, and its long lines repeated */
    harness_fini(&h);
    free(yaml);
}

/* The wildcard's required literal ("alpha", 5 bytes) gates its whole-value scan. */
static void test_lines_gated_rest(void **state)
{
    (void)state;
    check_rule_set("alpha*omega", "alpha", "omega");
}

/* The wildcard has no required literal of 3 bytes: scanned over every long value. */
static void test_lines_rest_always(void **state)
{
    (void)state;
    check_rule_set("ab*cd", "ab", "cd");
}

/* A line and a whole value with the same bytes: the memo keeps their records apart (the line's
 * holds the gate's id and lacks the wildcard's, which a whole value's scan reports). Last line
 * of a long value first, then the same bytes as a value of their own, then the long one again. */
static void test_lines_and_values_apart(void **state)
{
    (void)state;
    char *yaml = rules_yaml("alpha*omega");
    harness h;
    harness_init(&h, yaml);
    static char line[400], longer[1200];
    memset(line, 'm', 300);
    memcpy(line + 10, "alpha", 5);
    memcpy(line + 200, "omega", 5);
    token(line + 100, 17); /* group 2 */
    line[100 + strlen(line + 100)] = 'm';
    line[300] = '\0';
    for (int i = 0; i < 50; i++) memcpy(longer + 10 * i, "short one\n", 10); /* short lines */
    memcpy(longer + 500, line, 301);
    for (int round = 0; round < 3; round++) {
        const char *values[] = {longer, line};
        for (int v = 0; v < 2; v++) {
            uint64_t groups;
            bool w;
            fired(&h, values[v], &groups, &w);
            assert_int_equal(groups, (uint64_t)1 << 2);
            assert_true(w);
        }
    }
    detect_worker_stats st;
    detect_worker_stats_get(h.worker, &st);
    assert_int_equal(st.line_hits, 2); /* the long value's last line, rounds 2 and 3 */
    assert_true(st.memo_hits >= 2);    /* the value, rounds 2 and 3 */
    harness_fini(&h);
    free(yaml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_gated_rest),
        cmocka_unit_test(test_lines_rest_always),
        cmocka_unit_test(test_lines_and_values_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
