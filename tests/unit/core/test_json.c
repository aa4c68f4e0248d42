/* Unit tests: core/json.c — structure, strings, numbers, UTF-8 replacement, limits, writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

static json_parser *parser;
static arena a;

static int setup(void **state)
{
    (void)state;
    parser = json_parser_create();
    arena_init(&a, 4096);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_parser_destroy(parser);
    arena_fini(&a);
    return 0;
}

static int parse(const char *text, json_value *v, json_error *err)
{
    return json_parse(parser, &a, text, strlen(text), v, err);
}

/* Parses and re-serializes compactly. */
static const char *roundtrip(const char *text)
{
    static buf out;
    json_value v;
    json_error err;
    if (parse(text, &v, &err) != 0) return NULL;
    buf_clear(&out);
    json_write_value(&out, &v);
    return buf_cstr(&out);
}

static void test_structure(void **state)
{
    (void)state;
    assert_string_equal(roundtrip(" { \"a\" : [1, 2 ,{\"b\":null}], \"c\":true,\"d\":false } "),
                        "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}");
    assert_string_equal(roundtrip("[]"), "[]");
    assert_string_equal(roundtrip("{}"), "{}");
    assert_string_equal(roundtrip("\"x\""), "\"x\"");
    json_value v;
    assert_int_equal(parse("{\"k\":1,\"k\":2}", &v, NULL), 0); /* duplicates kept for the caller */
    assert_int_equal(v.len, 2);
    assert_int_equal(json_object_get(&v, "k", 1)->num.i, 1);
}

static void test_errors_name_offset(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t offset;
    } cases[] = {
        {"", 0},          {"{", 1},         {"{\"a\" 1}", 5}, {"[1,]", 3},       {"[1 2]", 3},
        {"{\"a\":1,}", 7}, {"tru", 0},       {"01", 1},        {"1.", 0},         {"-", 0},
        {"\"abc", 0},     {"\"a\\x\"", 2},   {"\"\\u12G4\"", 1}, {"\"a\tb\"", 2},  {"{} x", 3},
        {"{1:2}", 1},     {"1e+", 0},       {"nul", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_value v;
        json_error err = {0};
        int rc = parse(cases[i].text, &v, &err);
        if (rc != -EINVAL) fail_msg("case %zu '%s' parsed", i, cases[i].text);
        if (err.offset != cases[i].offset)
            fail_msg("case %zu '%s': offset %zu, want %zu (%s)", i, cases[i].text, err.offset, cases[i].offset, err.msg);
        assert_true(err.msg[0] != '\0');
    }
}

static void test_depth_limit(void **state)
{
    (void)state;
    char deep[2 * (JSON_MAX_DEPTH + 2) + 1];
    size_t n = 0;
    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++) deep[n++] = '[';
    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++) deep[n++] = ']';
    deep[n] = '\0';
    json_value v;
    json_error err;
    assert_int_equal(parse(deep, &v, &err), -EINVAL);
    assert_string_equal(err.msg, "nesting too deep");
    /* exactly at the limit is fine */
    assert_int_equal(parse(deep + 1, &v, &err) == 0 ? 0 : 1, 1); /* unbalanced: error */
    char ok[2 * JSON_MAX_DEPTH + 1];
    n = 0;
    for (int i = 0; i < JSON_MAX_DEPTH; i++) ok[n++] = '[';
    for (int i = 0; i < JSON_MAX_DEPTH; i++) ok[n++] = ']';
    ok[n] = '\0';
    assert_int_equal(parse(ok, &v, &err), 0);
}

static void test_strings(void **state)
{
    (void)state;
    json_value v;
    const char *plain = "\"C:\\\\Windows\\\\System32\\\\cmd.exe /c \\\"x\\\"\"";
    assert_int_equal(parse(plain, &v, NULL), 0);
    assert_int_equal(v.len, strlen("C:\\Windows\\System32\\cmd.exe /c \"x\""));
    assert_memory_equal(v.str, "C:\\Windows\\System32\\cmd.exe /c \"x\"", v.len);
    /* zero copy when there are no escapes */
    const char *text = "\"hello w\xc3\xb6rld\"";
    assert_int_equal(parse(text, &v, NULL), 0);
    assert_ptr_equal(v.str, text + 1);
    assert_int_equal(v.flags & JSON_FLAG_REPLACED, 0);
    /* \u escapes, surrogate pairs */
    assert_int_equal(parse("\"\\u00e9\\ud83d\\ude00\\u0000x\"", &v, NULL), 0);
    assert_int_equal(v.len, 2 + 4 + 1 + 1);
    assert_memory_equal(v.str, "\xc3\xa9\xf0\x9f\x98\x80\0x", 8);
    /* lone surrogate and invalid UTF-8 are replaced by U+FFFD, not rejected */
    assert_int_equal(parse("\"a\\ud800b\"", &v, NULL), 0);
    assert_memory_equal(v.str, "a\xef\xbf\xbd" "b", v.len);
    assert_true(v.flags & JSON_FLAG_REPLACED);
    assert_int_equal(parse("\"a\xff\xfe" "b\xc3\"", &v, NULL), 0);
    assert_int_equal(v.len, 1 + 3 + 3 + 1 + 3);
    assert_true(v.flags & JSON_FLAG_REPLACED);
    /* overlong encoding and encoded surrogate are invalid UTF-8 */
    assert_int_equal(parse("\"\xc0\xaf\xed\xa0\x80\"", &v, NULL), 0);
    assert_true(v.flags & JSON_FLAG_REPLACED);
    /* a long string with escapes deep inside (slow path growth) */
    char big[21000];
    size_t n = 0;
    big[n++] = '"';
    for (int i = 0; i < 4000; i++) {
        memcpy(big + n, "ab\\n\xff", 5);
        n += 5;
    }
    big[n++] = '"';
    big[n] = '\0';
    assert_int_equal(parse(big, &v, NULL), 0);
    assert_int_equal(v.len, 4000 * (2 + 1 + 3));
}

/* The scanners work on 16- or 32-byte blocks: every special sequence at every offset of two
 * blocks, in strings of every length around it, in the zero-copy and the decoding path
 * (a leading escape forces the latter), inside a document that goes on after the string. */
static void test_string_blocks(void **state)
{
    (void)state;
    static const struct {
        const char *raw;    /* as written inside the JSON string */
        const char *cooked; /* decoded bytes; NULL: an error at the sequence's offset */
        size_t cooked_len;
        bool replaced;
    } seqs[] = {
        {"\\\\", "\\", 1, false},
        {"\\\\\\\\", "\\\\", 2, false},
        {"\\r\\n\\t", "\r\n\t", 3, false},
        {"\\\"", "\"", 1, false},
        {"\\/\\b\\f", "/\b\f", 3, false},
        {"\\u00e9", "\xc3\xa9", 2, false},
        {"\\ud83d\\ude00", "\xf0\x9f\x98\x80", 4, false},
        {"\\udc00", "\xef\xbf\xbd", 3, true},
        {"\xc3\xa9", "\xc3\xa9", 2, false},
        {"\xe2\x82\xac", "\xe2\x82\xac", 3, false},
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", 4, false},
        {"\xff", "\xef\xbf\xbd", 3, true},
        {"\xc3", "\xef\xbf\xbd", 3, true},
        {"\x01", NULL, 0, false},
        {"\x1f", NULL, 0, false},
        {"\n", NULL, 0, false},
        {"\\x", NULL, 0, false},
    };
    char text[256], want[256];
    for (size_t q = 0; q < sizeof seqs / sizeof seqs[0]; q++) {
        size_t raw_len = strlen(seqs[q].raw);
        for (int decode = 0; decode < 2; decode++) {
            for (size_t off = 0; off < 70; off++) {
                for (size_t tail = 0; tail < 53; tail += 13) {
                    bool at_end = tail == 52; /* the string ends 2 bytes before the input */
                    size_t n = 0, w = 0;
                    text[n++] = '[';
                    text[n++] = '"';
                    if (decode) {
                        memcpy(text + n, "\\t", 2);
                        n += 2;
                        want[w++] = '\t';
                    }
                    for (size_t k = 0; k < off; k++) text[n++] = want[w++] = (char)('a' + k % 26);
                    size_t seq_at = n;
                    memcpy(text + n, seqs[q].raw, raw_len);
                    n += raw_len;
                    if (seqs[q].cooked) memcpy(want + w, seqs[q].cooked, seqs[q].cooked_len);
                    w += seqs[q].cooked_len;
                    for (size_t k = 0; k < tail; k++) text[n++] = want[w++] = (char)('A' + k % 26);
                    static const char rest[] = "\",\"tail \\\\ text of the document\",1]";
                    if (at_end) {
                        memcpy(text + n, "\"]", 2);
                        n += 2;
                    } else {
                        memcpy(text + n, rest, sizeof rest - 1);
                        n += sizeof rest - 1;
                    }
                    char *exact = malloc(n); /* exact size: a read past the input is caught by ASan */
                    memcpy(exact, text, n);
                    json_value v;
                    json_error err;
                    int rc = json_parse(parser, &a, exact, n, &v, &err);
                    if (!seqs[q].cooked) {
                        free(exact);
                        assert_int_equal(rc, -EINVAL);
                        assert_int_equal(err.offset, seq_at);
                        continue;
                    }
                    assert_int_equal(rc, 0);
                    assert_int_equal(v.type, JSON_ARRAY);
                    assert_int_equal(v.len, at_end ? 1 : 3);
                    const json_value *s = &v.items[0];
                    assert_int_equal(s->type, JSON_STRING);
                    assert_int_equal(s->len, w);
                    assert_memory_equal(s->str, want, w);
                    assert_int_equal(!!(s->flags & JSON_FLAG_REPLACED), seqs[q].replaced);
                    bool zero_copy = !decode && !strchr(seqs[q].raw, '\\') && !seqs[q].replaced;
                    assert_int_equal(s->str == exact + 2, zero_copy);
                    if (!at_end) {
                        assert_int_equal(v.items[1].len, 27);
                        assert_memory_equal(v.items[1].str, "tail \\ text of the document", 27);
                    }
                    free(exact);
                    arena_reset(&a);
                }
            }
        }
    }
    /* unterminated at every length: the scanners must not read past the input */
    for (size_t len = 1; len < 80; len++) {
        char *t = malloc(len);
        t[0] = '"';
        for (size_t k = 1; k < len; k++) t[k] = (k % 7 == 3 || k % 7 == 4) ? '\\' : 'x';
        if (t[len - 1] == '\\') t[len - 1] = 'y';
        json_value v;
        json_error err;
        assert_int_equal(json_parse(parser, &a, t, len, &v, &err), -EINVAL);
        free(t);
        arena_reset(&a);
    }
}

static void test_numbers(void **state)
{
    (void)state;
    json_value v;
    assert_int_equal(parse("9223372036854775807", &v, NULL), 0);
    assert_true(v.flags & JSON_FLAG_INT);
    assert_true(v.num.i == INT64_MAX);
    assert_int_equal(parse("-9223372036854775808", &v, NULL), 0);
    assert_true(v.flags & JSON_FLAG_INT);
    assert_true(v.num.i == INT64_MIN);
    assert_int_equal(parse("9223372036854775808", &v, NULL), 0);
    assert_false(v.flags & JSON_FLAG_INT);
    assert_int_equal(parse("-0.5e3", &v, NULL), 0);
    assert_false(v.flags & JSON_FLAG_INT);
    assert_true(v.num.d == -500.0);
    /* the text is kept: re-serialization is exact */
    assert_string_equal(roundtrip("[123456789012345678901234567890, 1.50, -0]"),
                        "[123456789012345678901234567890,1.50,-0]");
}

/* Integers of every digit count, both signs, in every context the parser reads numbers from:
 * with enough input after them for the 8-digits-at-a-time path, and near the input's end. */
static void test_number_digits(void **state)
{
    (void)state;
    static const char *const patterns[] = {"9999999999999999999999999", "1000000000000000000000000",
                                           "1234567890123456789012345", "9223372036854775807000000",
                                           "5050505050505050505050505", "1010101010101010101010101"};
    static const char *const contexts[][2] = {
        {"{\"n\":", ",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"},
        {"", ""},
        {"[", "]"},
        {"{\"n\" : ", " }"},
        {"[", ",\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]"},
        {"{\"n\":", "}"},
    };
    char num[32], text[128];
    for (size_t pi = 0; pi < sizeof patterns / sizeof patterns[0]; pi++) {
        for (size_t digits = 1; digits <= 25; digits++) {
            for (int neg = 0; neg < 2; neg++) {
                size_t nl = 0;
                if (neg) num[nl++] = '-';
                memcpy(num + nl, patterns[pi], digits);
                nl += digits;
                num[nl] = '\0';
                /* reference: exact below 20 digits, else only a double fits */
                bool is_int = false;
                int64_t want_i = 0;
                if (digits < 20) {
                    uint64_t mag = 0;
                    for (size_t k = 0; k < digits; k++) mag = mag * 10 + (uint64_t)(patterns[pi][k] - '0');
                    if (mag <= (uint64_t)INT64_MAX + (uint64_t)neg) {
                        is_int = true;
                        want_i = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
                    }
                }
                double want_d = strtod(num, NULL);
                for (size_t c = 0; c < sizeof contexts / sizeof contexts[0]; c++) {
                    size_t n = (size_t)snprintf(text, sizeof text, "%s%s%s", contexts[c][0], num, contexts[c][1]);
                    json_value v;
                    json_error err;
                    if (json_parse(parser, &a, text, n, &v, &err) != 0) fail_msg("'%s': %s", text, err.msg);
                    const json_value *x = v.type == JSON_OBJECT ? &v.members[0].value
                                          : v.type == JSON_ARRAY ? &v.items[0]
                                                                 : &v;
                    assert_int_equal(x->type, JSON_NUMBER);
                    assert_int_equal(x->len, nl);
                    assert_ptr_equal(x->str, text + strlen(contexts[c][0]));
                    if (!!(x->flags & JSON_FLAG_INT) != is_int) fail_msg("'%s': int flag %d", text, x->flags);
                    if (is_int && x->num.i != want_i) fail_msg("'%s': %lld", text, (long long)x->num.i);
                    if (!is_int && x->num.d != want_d) fail_msg("'%s': %.17g", text, x->num.d);
                    arena_reset(&a);
                }
            }
        }
    }
}

/* Number edges where the fast path hands over or must reject exactly as the full parser. */
static void test_number_edges(void **state)
{
    (void)state;
    static const char pad[] = ",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    static const struct {
        const char *num;
        bool is_int;
        int64_t i;
        double d;
    } ok[] = {
        {"0", true, 0, 0},
        {"-0", true, 0, 0},
        {"9223372036854775807", true, INT64_MAX, 0},
        {"9223372036854775806", true, INT64_MAX - 1, 0},
        {"9223372036854775808", false, 0, 9223372036854775808.0},
        {"-9223372036854775808", true, INT64_MIN, 0},
        {"-9223372036854775807", true, INT64_MIN + 1, 0},
        {"-9223372036854775809", false, 0, -9223372036854775809.0},
        {"18446744073709551615", false, 0, 18446744073709551615.0},
        {"18446744073709551616", false, 0, 18446744073709551616.0},
        {"12345678.25", false, 0, 12345678.25},
        {"1234567812345678.5", false, 0, 1234567812345678.5},
        {"0.5", false, 0, 0.5},
        {"-0.0", false, 0, -0.0},
        {"1e3", false, 0, 1e3},
        {"1E3", false, 0, 1e3},
        {"12345678e+2", false, 0, 12345678e2},
        {"-5E-1", false, 0, -0.5},
        {"0e0", false, 0, 0},
        {"1234567890123456789e0", false, 0, 1234567890123456789e0},
    };
    char text[128];
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        size_t n = (size_t)snprintf(text, sizeof text, "{\"n\":%s%s", ok[k].num, pad);
        json_value v;
        json_error err;
        if (json_parse(parser, &a, text, n, &v, &err) != 0) fail_msg("'%s': %s", ok[k].num, err.msg);
        const json_value *x = &v.members[0].value;
        assert_int_equal(x->len, strlen(ok[k].num));
        assert_memory_equal(x->str, ok[k].num, x->len);
        if (!!(x->flags & JSON_FLAG_INT) != ok[k].is_int) fail_msg("'%s': int flag", ok[k].num);
        if (ok[k].is_int) assert_true(x->num.i == ok[k].i);
        else if (x->num.d != ok[k].d || signbit(x->num.d) != signbit(ok[k].d)) fail_msg("'%s': %.17g", ok[k].num, x->num.d);
        assert_int_equal(v.len, 2);
    }
    /* leading zeros and broken numbers: the same errors and offsets with input after them */
    static const struct {
        const char *num;
        size_t offset; /* from the number's start */
        const char *msg;
    } bad[] = {
        {"01", 1, "expected ',' or '}'"},
        {"-01", 2, "expected ',' or '}'"},
        {"00", 1, "expected ',' or '}'"},
        {"0123456789", 1, "expected ',' or '}'"},
        {"-", 0, "bad number"},
        {"-a", 0, "bad number"},
        {"--1", 0, "bad number"},
        {"1.", 0, "bad number: no digits after '.'"},
        {"12345678.x", 0, "bad number: no digits after '.'"},
        {"1e", 0, "bad number: no digits in exponent"},
        {"123456789012345678e+", 0, "bad number: no digits in exponent"},
        {"123x", 3, "expected ',' or '}'"},
        {"12345678123456781", 17, "expected ',' or '}'"}, /* followed by an 'x' (below) */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        size_t n = (size_t)snprintf(text, sizeof text, "{\"n\":%s%s", bad[k].num, k == 12 ? "x" : pad);
        if (k == 12) n += (size_t)snprintf(text + n, sizeof text - n, "%s", pad);
        json_value v;
        json_error err;
        assert_int_equal(json_parse(parser, &a, text, n, &v, &err), -EINVAL);
        if (err.offset != 5 + bad[k].offset || strcmp(err.msg, bad[k].msg) != 0)
            fail_msg("'%s': %zu %s", bad[k].num, err.offset, err.msg);
    }
}

/* Whitespace in every gap between tokens, alone and all at once, parses as without it. */
static void test_whitespace_everywhere(void **state)
{
    (void)state;
    static const char *const tokens[] = {"{",  "\"a\"", ":",     "[",    "1",     ",",    "-2",   ",",   "\"x\\ty\"",
                                         ",",  "{",     "\"b\"", ":",    "true",  "}",    "]",    ",",   "\"c\"",
                                         ":",  "{",     "\"d\"", ":",    "null",  ",",    "\"e\"", ":",  "false",
                                         "}",  ",",     "\"f\"", ":",    "[",     "]",    ",",    "\"g\"", ":",
                                         "{",  "}",     ",",     "\"h\"", ":",    "12345678901", "}"};
    static const char *const spaces[] = {" ", "\t", "\n", "\r", " \r\n\t "};
    size_t count = sizeof tokens / sizeof tokens[0];
    char text[512], want[512];
    size_t n = 0;
    for (size_t k = 0; k < count; k++) n += (size_t)snprintf(want + n, sizeof want - n, "%s", tokens[k]);
    for (size_t s = 0; s < sizeof spaces / sizeof spaces[0]; s++) {
        for (size_t gap = 0; gap <= count + 1; gap++) { /* gap count + 1: every gap at once */
            n = 0;
            for (size_t k = 0; k <= count; k++) {
                if (gap == k || gap == count + 1) n += (size_t)snprintf(text + n, sizeof text - n, "%s", spaces[s]);
                if (k < count) n += (size_t)snprintf(text + n, sizeof text - n, "%s", tokens[k]);
            }
            const char *got = roundtrip(text);
            if (!got || strcmp(got, want) != 0) fail_msg("gap %zu space %zu: '%s' -> %s", gap, s, text, got ? got : "error");
        }
    }
}

/* Every prefix of a small document fails with the error and offset the parser always gave. */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"a\": [1, -20, 3.5e-2, \"x\\ny\"], \"b\" :{\"c\":true,\"d\":null}, \"e\":false, \"f\":\"\\u00e9\"}";
    static const struct {
        size_t offset;
        const char *msg;
    } want[] = {
        {0, "unexpected end of input"}, {1, "unterminated object"}, {1, "unterminated string"},
        {1, "unterminated string"}, {4, "expected ':'"}, {5, "unexpected end of input"},
        {6, "unexpected end of input"}, {7, "unexpected end of input"}, {6, "unterminated array"},
        {9, "unexpected end of input"}, {10, "unexpected end of input"}, {10, "bad number"},
        {6, "unterminated array"}, {6, "unterminated array"}, {14, "unexpected end of input"},
        {15, "unexpected end of input"}, {6, "unterminated array"}, {15, "bad number: no digits after '.'"},
        {6, "unterminated array"}, {15, "bad number: no digits in exponent"}, {15, "bad number: no digits in exponent"},
        {6, "unterminated array"}, {22, "unexpected end of input"}, {23, "unexpected end of input"},
        {23, "unterminated string"}, {23, "unterminated string"}, {25, "unterminated escape"},
        {23, "unterminated string"}, {23, "unterminated string"}, {6, "unterminated array"},
        {0, "unterminated object"}, {31, "unterminated object"}, {32, "unterminated object"},
        {32, "unterminated string"}, {32, "unterminated string"}, {35, "expected ':'"},
        {36, "expected ':'"}, {37, "unexpected end of input"}, {38, "unterminated object"},
        {38, "unterminated string"}, {38, "unterminated string"}, {41, "expected ':'"},
        {42, "unexpected end of input"}, {42, "invalid literal"}, {42, "invalid literal"},
        {42, "invalid literal"}, {37, "unterminated object"}, {47, "unterminated object"},
        {47, "unterminated string"}, {47, "unterminated string"}, {50, "expected ':'"},
        {51, "unexpected end of input"}, {51, "invalid literal"}, {51, "invalid literal"},
        {51, "invalid literal"}, {37, "unterminated object"}, {0, "unterminated object"},
        {57, "unterminated object"}, {58, "unterminated object"}, {58, "unterminated string"},
        {58, "unterminated string"}, {61, "expected ':'"}, {62, "unexpected end of input"},
        {62, "invalid literal"}, {62, "invalid literal"}, {62, "invalid literal"},
        {62, "invalid literal"}, {0, "unterminated object"}, {68, "unterminated object"},
        {69, "unterminated object"}, {69, "unterminated string"}, {69, "unterminated string"},
        {72, "expected ':'"}, {73, "unexpected end of input"}, {73, "unterminated string"},
        {74, "unterminated escape"}, {74, "bad \\u escape"}, {74, "bad \\u escape"},
        {74, "bad \\u escape"}, {74, "bad \\u escape"}, {73, "unterminated string"},
        {0, "unterminated object"},
    };
    _Static_assert(sizeof want / sizeof want[0] == sizeof doc - 1, "one entry per prefix");
    for (size_t k = 0; k < sizeof doc - 1; k++) {
        char *t = malloc(k ? k : 1); /* exact size: a read past the end is caught by ASan */
        memcpy(t, doc, k);
        json_value v;
        json_error err = {0};
        assert_int_equal(json_parse(parser, &a, t, k, &v, &err), -EINVAL);
        if (err.offset != want[k].offset || strcmp(err.msg, want[k].msg) != 0)
            fail_msg("prefix %zu: %zu '%s', want %zu '%s'", k, err.offset, err.msg, want[k].offset, want[k].msg);
        free(t);
    }
    assert_string_equal(roundtrip(doc), "{\"a\":[1,-20,3.5e-2,\"x\\ny\"],\"b\":{\"c\":true,\"d\":null},\"e\":false,\"f\":\"\xc3\xa9\"}");
}

static void test_parse_next_ndjson(void **state)
{
    (void)state;
    const char *text = "{\"a\":1}\n{\"a\":2}{\"a\":3}\r\n  \n";
    size_t pos = 0, len = strlen(text);
    int count = 0;
    json_value v;
    int rc;
    while ((rc = json_parse_next(parser, &a, text, len, &pos, &v, NULL)) == 0) {
        count++;
        assert_int_equal(json_object_get(&v, "a", 1)->num.i, count);
    }
    assert_int_equal(rc, -ENODATA);
    assert_int_equal(count, 3);
}

static void test_writer_escapes(void **state)
{
    (void)state;
    buf out;
    buf_init(&out);
    json_write_string(&out, "a\"b\\c\n\x01\x7f", 8);
    assert_string_equal(buf_cstr(&out), "\"a\\\"b\\\\c\\n\\u0001\x7f\"");
    buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),     cmocka_unit_test(test_errors_name_offset),
        cmocka_unit_test(test_depth_limit),   cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),       cmocka_unit_test(test_parse_next_ndjson),
        cmocka_unit_test(test_writer_escapes), cmocka_unit_test(test_string_blocks),
        cmocka_unit_test(test_number_digits),  cmocka_unit_test(test_number_edges),
        cmocka_unit_test(test_whitespace_everywhere), cmocka_unit_test(test_truncated_everywhere),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
