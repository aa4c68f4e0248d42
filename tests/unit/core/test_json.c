/* Unit tests: core/json.c — structure, strings, numbers, UTF-8 replacement, limits, writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
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
                for (size_t tail = 0; tail < 40; tail += 13) {
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
                    memcpy(text + n, rest, sizeof rest - 1);
                    n += sizeof rest - 1;
                    json_value v;
                    json_error err;
                    int rc = json_parse(parser, &a, text, n, &v, &err);
                    if (!seqs[q].cooked) {
                        assert_int_equal(rc, -EINVAL);
                        assert_int_equal(err.offset, seq_at);
                        continue;
                    }
                    assert_int_equal(rc, 0);
                    assert_int_equal(v.type, JSON_ARRAY);
                    assert_int_equal(v.len, 3);
                    const json_value *s = &v.items[0];
                    assert_int_equal(s->type, JSON_STRING);
                    assert_int_equal(s->len, w);
                    assert_memory_equal(s->str, want, w);
                    assert_int_equal(!!(s->flags & JSON_FLAG_REPLACED), seqs[q].replaced);
                    bool zero_copy = !decode && !strchr(seqs[q].raw, '\\') && !seqs[q].replaced;
                    assert_int_equal(s->str == text + 2, zero_copy);
                    assert_int_equal(v.items[1].len, 27);
                    assert_memory_equal(v.items[1].str, "tail \\ text of the document", 27);
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
