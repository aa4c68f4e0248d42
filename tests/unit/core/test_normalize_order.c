/* tests/unit/core/test_normalize_order.c — the normalizer's sort (core/normalize_write.c):
 * paths under winlog.event_data. are keyed by the bytes after that prefix and sorted apart,
 * then inserted as one block among the others; System fields arrive as a sorted run. These
 * tests put paths on both sides of the prefix, names that tie on their first 8 or 16 bytes,
 * bytes below '.' and >= 0x80, and duplicates, and check the canonical JSON's member order
 * against a plain reference sort (norm_text also checks the deferred JSON is the same bytes).
 * Also the GUID check and case folding (norm_as_guid). */
#include "normalize_fixture.h"

/* The reference order of the canonical JSON's flattened paths: bytewise, '.' first. */
static unsigned rank_byte(unsigned char c) { return c == '.' ? 0u : c < '.' ? c + 1u : c; }

static int ranked_cmp(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    if (!a[i] || !b[i]) return a[i] ? 1 : b[i] ? -1 : 0;
    return rank_byte((unsigned char)a[i]) < rank_byte((unsigned char)b[i]) ? -1 : 1;
}

/* The JSON's leaves in document order must be in ranked order (check_invariants sorts them
 * before comparing, so it does not see the writer's order). */
static void assert_json_order(struct fixture *f, const mamori_event *ev)
{
    check_invariants(f, ev);
    mamori_event full = *ev;
    if (!full.json) {
        char err[128];
        assert_int_equal(normalize_event_json(f->norm, &f->arena, &full, err, sizeof err), 0);
    }
    json_value back;
    json_error jerr;
    assert_int_equal(json_parse(f->parser, &f->arena, full.json, full.json_len, &back, &jerr), 0);
    static const char *paths[EVENT_MAX_FIELDS + 1];
    static char path[4096];
    size_t count = 0;
    flatten_into(&back, path, 0, paths, &count, EVENT_MAX_FIELDS + 1);
    assert_int_equal(count, ev->field_count);
    for (size_t i = 0; i < count; i++) {
        if (i && ranked_cmp(paths[i - 1], paths[i]) >= 0) fail_msg("'%s' before '%s' in %s", paths[i - 1], paths[i], full.json);
    }
    for (size_t i = 0; i < count; i++) free((void *)paths[i]);
}

static void test_paths_on_both_sides_of_the_event_data_prefix(void **state)
{
    struct fixture *f = *state;
    /* ECS input: the same prefix rule applies to paths sent as they are */
    static const char in[] =
        "{\"winlog.event_data.b\":1,\"winlog.event\":2,\"winlog.event_datb\":3,\"winlog.event_data_x\":4,"
        "\"winlog.event_dat\":5,\"winlog.event_data.aaaaaaaaaaaaaaaa2\":6,\"winlog.event_data.aaaaaaaaaaaaaaaa\":7,"
        "\"winlog.event_data.aaaaaaaaaaaaaaaa1\":8,\"winlog.event_data.aaaaaaaa\":9,\"winlog.event_data.A\":10,"
        "\"winlog.event_data.\\u00e9t\\u00e9\":11,\"winlog.event_data.\\u00ff\":12,\"winlog.eventZ\":13,"
        "\"winlog.f\":14,\"winlog\":{\"event_data\":{\"c\":{\"d\":15},\"ab\":16}},\"winlog.event_id\":17,"
        "\"winlog.event_data.aaaaaaaaX\":18,\"winlog.event_data.aaaaaaa\":19,\"winlog.e\":20,\"a\":21,\"z\":22}";
    mamori_event a = must_norm(f, EVENT_FORMAT_ECS, in);
    assert_json_order(f, &a);
    assert_int_equal(a.field_count, 22 + 4); /* host.id, mamori.* */
    assert_int(&a, "winlog.event_data.c.d", 15);
    assert_int(&a, "winlog.event_data.\xc3\xa9t\xc3\xa9", 11);
    assert_int(&a, "winlog.event_data.aaaaaaaaaaaaaaaa", 7);
    assert_int(&a, "winlog.event_data.aaaaaaaaaaaaaaaa1", 8);
    assert_int(&a, "winlog.event_data.aaaaaaaaaaaaaaaa2", 6);
    assert_int(&a, "winlog.event_datb", 3);
    /* the same fields in another order give the same event */
    mamori_event b = must_norm(
        f, EVENT_FORMAT_ECS,
        "{\"z\":22,\"winlog.e\":20,\"winlog.event_data.aaaaaaa\":19,\"winlog.event_data.aaaaaaaaX\":18,"
        "\"winlog.event_id\":17,\"winlog\":{\"event_data\":{\"ab\":16,\"c\":{\"d\":15}}},\"winlog.f\":14,"
        "\"winlog.eventZ\":13,\"winlog.event_data.\\u00ff\":12,\"winlog.event_data.\\u00e9t\\u00e9\":11,"
        "\"winlog.event_data.A\":10,\"winlog.event_data.aaaaaaaa\":9,\"winlog.event_data.aaaaaaaaaaaaaaaa1\":8,"
        "\"winlog.event_data.aaaaaaaaaaaaaaaa\":7,\"winlog.event_data.aaaaaaaaaaaaaaaa2\":6,\"winlog.event_dat\":5,"
        "\"winlog.event_data_x\":4,\"winlog.event_datb\":3,\"winlog.event\":2,\"winlog.event_data.b\":1,\"a\":21}");
    assert_same_event(&a, &b);
    /* only paths under the prefix: the block goes between the others that sort around it */
    mamori_event c = must_norm(f, EVENT_FORMAT_ECS, "{\"winlog.event_data.y\":1,\"winlog.event_data.x\":2}");
    assert_json_order(f, &c);
    assert_string_equal(c.fields[0].path, "host.id");
    assert_string_equal(c.fields[4].path, "winlog.event_data.x");
    assert_string_equal(c.fields[5].path, "winlog.event_data.y");
}

static void test_event_data_bytes_below_dot_and_duplicates(void **state)
{
    struct fixture *f = *state;
    /* '-' and '+' sort below '.': the fields are then re-sorted bytewise, the JSON is not */
    mamori_event a = must_norm(f, EVENT_FORMAT_ECS,
                               "{\"winlog.event_data.a-b\":1,\"winlog.event_data.a\":{\"c\":2},\"winlog.event_data.a+\":3,"
                               "\"winlog.event_data.ab\":4,\"winlog.event_data-\":5,\"winlog.event_data\\u0001\":6}");
    assert_json_order(f, &a);
    /* claimed twice: rejected, under the prefix as anywhere */
    expect_reject(f, EVENT_FORMAT_ECS, "{\"winlog.event_data.x\":1,\"winlog\":{\"event_data\":{\"x\":2}}}",
                  "duplicate field 'winlog.event_data.x'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"winlog.event_data.x\":1,\"winlog.event_data.x.y\":2}",
                  "conflicting field 'winlog.event_data.x'");
    /* NXLog: unmapped EventData names, one of them twice once its space is dropped */
    expect_reject(f, EVENT_FORMAT_AUTO, "{\"EventID\":4624,\"Channel\":\"Security\",\"Foo Bar\":\"1\",\"FooBar\":\"2\"}",
                  "duplicate field 'winlog.event_data.FooBar'");
}

static void test_nxlog_event_data_order_does_not_matter(void **state)
{
    struct fixture *f = *state;
    static const char *const members[] = {
        "\"EventID\":4688",
        "\"Channel\":\"Security\"",
        "\"SubjectUserSid\":\"S-1-5-18\"",
        "\"SubjectUserName\":\"WS$\"",
        "\"SubjectDomainName\":\"CORP\"",
        "\"SubjectLogonId\":\"0x3e7\"",
        "\"NewProcessName\":\"C:\\\\Windows\\\\cmd.exe\"",
        "\"TokenElevationType\":\"%%1936\"",
        "\"MandatoryLabel\":\"S-1-16-16384\"",
        "\"ZzLast\":\"z\"",
        "\"A\":\"upper\"",
        "\"a\":\"lower\"",
        "\"_\":\"underscore\"",
        "\"N\\u00e4me\":\"umlaut\"",
        "\"TargetUserSidTargetUserSid1\":\"x1\"",
        "\"TargetUserSidTargetUserSid2\":\"x2\"",
        "\"TargetUserSidTargetUserSid\":\"x\"",
        "\"ActivityID\":\"{AAAAAAAA-0000-1111-BBBB-CCCCCCCCCCCC}\"",
        "\"Hostname\":\"ws\"",
    };
    enum { COUNT = sizeof members / sizeof members[0] };
    char forward[2048], backward[2048];
    size_t fl = 0, bl = 0;
    forward[fl++] = backward[bl++] = '{';
    for (size_t i = 0; i < COUNT; i++) {
        fl += (size_t)snprintf(forward + fl, sizeof forward - fl, "%s%s", i ? "," : "", members[i]);
        bl += (size_t)snprintf(backward + bl, sizeof backward - bl, "%s%s", i ? "," : "", members[COUNT - 1 - i]);
    }
    forward[fl++] = backward[bl++] = '}';
    forward[fl] = backward[bl] = '\0';
    mamori_event a = must_norm(f, EVENT_FORMAT_AUTO, forward);
    mamori_event b = must_norm(f, EVENT_FORMAT_AUTO, backward);
    assert_json_order(f, &a);
    assert_same_event(&a, &b);
    assert_str(&a, "winlog.event_data.TargetUserSidTargetUserSid", "x");
    assert_str(&a, "winlog.event_data.TargetUserSidTargetUserSid1", "x1");
    assert_str(&a, "winlog.event_data.N\xc3\xa4me", "umlaut");
    assert_str(&a, "winlog.event_data._", "underscore");
    assert_str(&a, "winlog.activity_id", "{aaaaaaaa-0000-1111-bbbb-cccccccccccc}");
}

/* ActivityID through NXLog: a canonical GUID comes out lower-case in braces; anything else as sent. */
static void expect_activity_id(struct fixture *f, const char *json_text, const char *want)
{
    char in[256];
    snprintf(in, sizeof in, "{\"EventID\":1,\"Channel\":\"Security\",\"ActivityID\":\"%s\"}", json_text);
    mamori_event ev = must_norm(f, EVENT_FORMAT_AUTO, in);
    const json_value *v = get(&ev, "winlog.activity_id");
    assert_non_null(v);
    assert_int_equal(v->type, JSON_STRING);
    if (v->len != strlen(want) || memcmp(v->str, want, v->len) != 0)
        fail_msg("ActivityID %s: got '%.*s', want '%s'", json_text, (int)v->len, v->str, want);
}

static void test_guid_check_and_case(void **state)
{
    struct fixture *f = *state;
    expect_activity_id(f, "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}", "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}");
    expect_activity_id(f, "5770385f-c22a-43e0-bf4c-06f5698ffbd9", "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}");
    expect_activity_id(f, "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}", "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}");
    expect_activity_id(f, "ABCDEF09-AbCd-EF01-2345-6789abcdefAB", "{abcdef09-abcd-ef01-2345-6789abcdefab}");
    /* one bad byte in each stretch of hex digits (and in the overlap of the last two words),
     * including the neighbours of the hex ranges: '/', ':', '@', 'G', '`', 'g' */
    static const char good[] = "5770385F-C22A-43E0-BF4C-06F5698FFBD9";
    static const char bad_bytes[] = "/:@G`g \x10\x19";
    for (size_t p = 0; p < sizeof good - 1; p++) { /* every position: hex digits and dashes */
        for (size_t b = 0; b < sizeof bad_bytes - 1; b++) {
            char text[64], escaped[64];
            memcpy(text, good, sizeof good);
            text[p] = bad_bytes[b];
            /* control bytes as JSON escapes; the normalizer sees the raw byte */
            size_t k = 0;
            for (size_t i = 0; text[i]; i++) {
                if ((unsigned char)text[i] < 0x20) k += (size_t)snprintf(escaped + k, sizeof escaped - k, "\\u%04x", (unsigned)text[i]);
                else escaped[k++] = text[i];
            }
            escaped[k] = '\0';
            expect_activity_id(f, escaped, text);
        }
    }
    /* a dash where a digit belongs, a digit where a dash belongs; two bytes >= 0x80 (U+00E9) at
     * every position, the length kept */
    for (size_t p = 0; p + 1 < sizeof good - 1; p++) {
        char text[64];
        memcpy(text, good, sizeof good);
        text[p] = text[p] == '-' ? 'a' : '-';
        expect_activity_id(f, text, text);
        memcpy(text, good, sizeof good);
        memcpy(text + p, "\xc3\xa9", 2);
        expect_activity_id(f, text, text);
    }
    /* bytes >= 0x80, a dash moved, wrong lengths, unbalanced braces: as sent */
    expect_activity_id(f, "5770385F-C22A-43E0-BF4C-06F5698FFB\\u00e9", "5770385F-C22A-43E0-BF4C-06F5698FFB\xc3\xa9");
    expect_activity_id(f, "5770385FC-22A-43E0-BF4C-06F5698FFBD9", "5770385FC-22A-43E0-BF4C-06F5698FFBD9");
    expect_activity_id(f, "5770385F-C22A-43E0-BF4C-06F5698FFBD", "5770385F-C22A-43E0-BF4C-06F5698FFBD");
    expect_activity_id(f, "{5770385F-C22A-43E0-BF4C-06F5698FFBD9", "{5770385F-C22A-43E0-BF4C-06F5698FFBD9");
    expect_activity_id(f, "", "");
}

/* event_path_cmp (core/event.h), inline and 8 bytes at a time, orders paths as memcmp and
 * then length do: strings that tie on their first 8 or 16 bytes, prefixes of each other,
 * bytes >= 0x80 and below '.'. */
static int reference_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

static void test_event_path_cmp_is_memcmp_order(void **state)
{
    (void)state;
    static const char alphabet[] = "ab.\x01\x7f\x80\xff";
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    char a[40], b[40];
    for (int round = 0; round < 200000; round++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t alen = rng % 33, blen = (rng >> 8) % 33, same = (rng >> 16) % 33;
        for (size_t i = 0; i < sizeof a; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            a[i] = alphabet[rng % 7];
            b[i] = i < same ? a[i] : alphabet[(rng >> 8) % 7];
        }
        int want = reference_cmp(a, alen, b, blen), got = event_path_cmp(a, alen, b, blen);
        if (want != got) fail_msg("round %d: lengths %zu %zu, shared %zu: %d, memcmp order %d", round, alen, blen, same, got, want);
        assert_int_equal(event_path_cmp(b, blen, a, alen), -want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_paths_on_both_sides_of_the_event_data_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_data_bytes_below_dot_and_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nxlog_event_data_order_does_not_matter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guid_check_and_case, setup, teardown),
        cmocka_unit_test(test_event_path_cmp_is_memcmp_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
