/* tests/unit/core/test_normalize.c — normalize_event (core/normalize.c): ECS flattening
 * and canonical output, stamping, time rules, rejections; enrichment, repeated Hashes and
 * conflicts. The winlog shapes are in test_normalize_winlog.c; real data (SigmaHQ regression
 * events, OTRF) in test_normalize_data.c. */
#include "normalize_fixture.h"

/* ---- ECS ------------------------------------------------------------------------------ */

static void test_ecs_flatten_and_dotted_keys_are_equivalent(void **state)
{
    struct fixture *f = *state;
    mamori_event a = must_norm(f, EVENT_FORMAT_ECS,
                               "{\"process\":{\"name\":\"cmd.exe\",\"pid\":42,\"parent\":{\"pid\":1}},\"host\":{\"name\":\"h\"}}");
    mamori_event b = must_norm(f, EVENT_FORMAT_ECS,
                               "{\"host.name\":\"h\",\"process.parent.pid\":1,\"process.pid\":42,\"process.name\":\"cmd.exe\"}");
    mamori_event c = must_norm(f, EVENT_FORMAT_ECS,
                               "{\"process\":{\"parent.pid\":1},\"process.name\":\"cmd.exe\",\"host\":{\"name\":\"h\"},"
                               "\"process.pid\":42}");
    assert_same_event(&a, &b);
    assert_same_event(&a, &c);
    check_invariants(f, &a);
    assert_string_equal(a.json, "{\"host\":{\"id\":\"agent-7\",\"name\":\"h\"},\"mamori\":{\"agent_id\":\"agent-7\","
                                "\"received\":\"2024-05-01T12:34:56.000000Z\",\"tenant\":\"acme\"},"
                                "\"process\":{\"name\":\"cmd.exe\",\"parent\":{\"pid\":1},\"pid\":42}}");
    assert_int_equal(a.index, 3);
    assert_int_equal(a.field_count, 8);
}

static void test_ecs_canonical_output_is_deterministic(void **state)
{
    struct fixture *f = *state;
    const char *in = "{\"z\":[3,\"x\",null,true],\"a\":{\"b\":\"\\u00e9\\n\\\"q\\\"\",\"a\":-1.5e3},"
                     "\"m\":[{\"y\":1,\"x\":{\"d\":2,\"c\":1}}],\"e\":{},\"n\":null,\"@timestamp\":\"2024-05-01T12:00:00Z\"}";
    mamori_event a = must_norm(f, EVENT_FORMAT_ECS, in);
    mamori_event b = must_norm(f, EVENT_FORMAT_ECS, in);
    assert_same_event(&a, &b);
    check_invariants(f, &a);
    /* arrays of scalars stay arrays, arrays with objects stay whole (members sorted),
     * empty objects vanish, null stays, numbers keep their text */
    assert_string_equal(a.json,
                        "{\"@timestamp\":\"2024-05-01T12:00:00.000000Z\",\"a\":{\"a\":-1.5e3,\"b\":\"\xc3\xa9\\n\\\"q\\\"\"},"
                        "\"host\":{\"id\":\"agent-7\"},\"m\":[{\"x\":{\"c\":1,\"d\":2},\"y\":1}],"
                        "\"mamori\":{\"agent_id\":\"agent-7\",\"received\":\"2024-05-01T12:34:56.000000Z\","
                        "\"tenant\":\"acme\"},\"n\":null,\"z\":[3,\"x\",null,true]}");
    assert_int_equal(get(&a, "n")->type, JSON_NULL);
    assert_int_equal(get(&a, "z")->type, JSON_ARRAY);
    assert_int_equal(get(&a, "m")->type, JSON_ARRAY);
    assert_absent(&a, "e");
    /* reordering the input changes nothing */
    mamori_event c = must_norm(f, EVENT_FORMAT_ECS,
                               "{\"@timestamp\":\"2024-05-01T12:00:00Z\",\"n\":null,\"e\":{},\"m\":[{\"x\":{\"c\":1,\"d\":2},"
                               "\"y\":1}],\"a\":{\"a\":-1.5e3,\"b\":\"\xc3\xa9\\n\\\"q\\\"\"},\"z\":[3,\"x\",null,true]}");
    assert_same_event(&a, &c);
}

static void test_ecs_sorting_with_bytes_below_dot(void **state)
{
    struct fixture *f = *state;
    /* '-' and ' ' sort below '.': JSON member order (per object) and the bytewise order of
     * fields differ, and both must hold. */
    mamori_event ev = must_norm(f, EVENT_FORMAT_ECS, "{\"a-b\":1,\"a\":{\"c\":2,\"b c\":3},\"a b\":4,\"ab\":5}");
    check_invariants(f, &ev);
    assert_string_equal(ev.json, "{\"a\":{\"b c\":3,\"c\":2},\"a b\":4,\"a-b\":1,\"ab\":5,\"host\":{\"id\":\"agent-7\"},"
                                 "\"mamori\":{\"agent_id\":\"agent-7\",\"received\":\"2024-05-01T12:34:56.000000Z\","
                                 "\"tenant\":\"acme\"}}");
    assert_string_equal(ev.fields[0].path, "a b");
    assert_string_equal(ev.fields[1].path, "a-b");
    assert_string_equal(ev.fields[2].path, "a.b c");
    assert_string_equal(ev.fields[3].path, "a.c");
    assert_int(&ev, "a-b", 1);
    assert_int(&ev, "a.b c", 3);
}

static void test_ecs_duplicates_and_conflicts_are_rejected(void **state)
{
    struct fixture *f = *state;
    expect_reject(f, EVENT_FORMAT_ECS, "{\"a\":1,\"a\":2}", "duplicate field 'a'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"process.name\":\"x\",\"process\":{\"name\":\"y\"}}",
                  "duplicate field 'process.name'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"process\":{\"pid\":1},\"process\":{\"pid\":1}}", "duplicate field 'process.pid'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"process\":\"x\",\"process.name\":\"y\"}", "conflicting field 'process'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"a\":1,\"a-b\":2,\"a.c\":3}", "conflicting field 'a'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"host\":\"h\"}", "conflicting field 'host'"); /* host.id is stamped */
    expect_reject(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"x\",\"@timestamp\":\"y\"}", "duplicate field '@timestamp'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"a..b\":1}", "empty field name");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"\":1}", "empty field name");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"a\":{\"b.\":1}}", "empty field name");
}

static void test_ecs_not_an_object(void **state)
{
    struct fixture *f = *state;
    expect_reject(f, EVENT_FORMAT_ECS, "[1,2]", "event is not an object");
    expect_reject(f, EVENT_FORMAT_AUTO, "\"text\"", "event is not an object");
    expect_reject(f, EVENT_FORMAT_WINLOG, "42", "event is not an object");
    expect_reject(f, EVENT_FORMAT_AUTO, "null", "event is not an object");
}

static void test_ecs_limits(void **state)
{
    struct fixture *f = *state;
    buf b;
    buf_init(&b);
    /* EVENT_MAX_FIELDS input fields plus the stamps: too many */
    buf_putc(&b, '{');
    for (int i = 0; i < EVENT_MAX_FIELDS; i++) buf_printf(&b, "%s\"f%d\":%d", i ? "," : "", i, i);
    buf_putc(&b, '}');
    expect_reject(f, EVENT_FORMAT_ECS, buf_cstr(&b), "too many fields");
    /* room for the stamps (mamori.* ×3, host.id) is fine */
    buf_clear(&b);
    buf_putc(&b, '{');
    for (int i = 0; i < EVENT_MAX_FIELDS - 4; i++) buf_printf(&b, "%s\"f%d\":%d", i ? "," : "", i, i);
    buf_putc(&b, '}');
    mamori_event ev = must_norm(f, EVENT_FORMAT_ECS, buf_cstr(&b));
    assert_int_equal(ev.field_count, EVENT_MAX_FIELDS);
    check_invariants(f, &ev);
    /* a path of exactly EVENT_MAX_PATH_BYTES is fine, one more is not */
    char key[EVENT_MAX_PATH_BYTES + 2];
    memset(key, 'k', sizeof key);
    key[EVENT_MAX_PATH_BYTES] = '\0';
    buf_clear(&b);
    buf_printf(&b, "{\"%s\":1}", key);
    ev = must_norm(f, EVENT_FORMAT_ECS, buf_cstr(&b));
    assert_non_null(event_get(&ev, key, EVENT_MAX_PATH_BYTES));
    key[EVENT_MAX_PATH_BYTES] = 'k';
    key[EVENT_MAX_PATH_BYTES + 1] = '\0';
    buf_clear(&b);
    buf_printf(&b, "{\"%s\":1}", key);
    expect_reject(f, EVENT_FORMAT_ECS, buf_cstr(&b), "field path too long");
    /* a path already at the limit cannot grow: nothing may be written past it (found by
     * fuzz_normalize: the '.' went in, then the key ran over the scratch path) */
    key[EVENT_MAX_PATH_BYTES] = '\0';
    buf_clear(&b);
    buf_printf(&b, "{\"%s\":{\"b\":1}}", key);
    expect_reject(f, EVENT_FORMAT_ECS, buf_cstr(&b), "field path too long 'kkkk");
    buf_clear(&b);
    buf_printf(&b, "{\"winlog\":{\"channel\":\"c\"},\"%s\":{\"%s\":1}}", key, key);
    expect_reject(f, EVENT_FORMAT_AUTO, buf_cstr(&b), "field path too long");
    key[EVENT_MAX_PATH_BYTES - 1] = '\0';
    buf_clear(&b);
    buf_printf(&b, "{\"%s\":{\"\":1}}", key); /* 255 + '.' fits; the empty name is the problem */
    expect_reject(f, EVENT_FORMAT_ECS, buf_cstr(&b), "empty field name");
    /* nested: 60 levels of "aaaa" make a path of 299 bytes */
    buf_clear(&b);
    for (int i = 0; i < 60; i++) buf_puts(&b, "{\"aaaa\":");
    buf_puts(&b, "1");
    for (int i = 0; i < 60; i++) buf_putc(&b, '}');
    expect_reject(f, EVENT_FORMAT_ECS, buf_cstr(&b), "field path too long");
    buf_fini(&b);
}

static void test_ecs_mamori_fields_cannot_be_spoofed(void **state)
{
    struct fixture *f = *state;
    mamori_event ev = must_norm(f, EVENT_FORMAT_ECS,
                                "{\"mamori\":{\"tenant\":\"evil\",\"agent_id\":\"other\",\"event_id\":\"ffff\","
                                "\"received\":\"1999-01-01T00:00:00Z\",\"x\":{\"y\":1}},\"mamori.tenant\":\"evil2\","
                                "\"mamori\":\"flat\",\"user\":{\"name\":\"u\"}}");
    check_invariants(f, &ev);
    assert_str(&ev, "mamori.tenant", "acme");
    assert_str(&ev, "mamori.agent_id", "agent-7");
    assert_str(&ev, "mamori.received", "2024-05-01T12:34:56.000000Z");
    assert_absent(&ev, "mamori.event_id");
    assert_absent(&ev, "mamori.x.y");
    assert_str(&ev, "user.name", "u");
}

static void test_ecs_host_id_defaults_to_agent(void **state)
{
    struct fixture *f = *state;
    mamori_event ev = must_norm(f, EVENT_FORMAT_ECS, "{\"host\":{\"name\":\"h\"}}");
    assert_str(&ev, "host.id", "agent-7");
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"host\":{\"id\":\"hw-uuid-1\"}}");
    assert_str(&ev, "host.id", "hw-uuid-1");
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"host.id\":null}");
    assert_int_equal(get(&ev, "host.id")->type, JSON_NULL);
}

static void test_ecs_timestamps(void **state)
{
    struct fixture *f = *state;
    /* parseable: reformatted canonically, used as ts */
    mamori_event ev = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"2024-05-01T14:30:00.5+02:00\"}");
    assert_str(&ev, "@timestamp", "2024-05-01T12:30:00.500000Z");
    assert_true(ev.ts_us == 1714566600500000LL);
    /* equal instants, equal text */
    mamori_event other = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"2024-05-01 12:30:00.500Z\"}");
    assert_same_event(&ev, &other);
    /* missing: received, nothing invented */
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"a\":1}");
    assert_true(ev.ts_us == RECEIVED_US);
    assert_absent(&ev, "@timestamp");
    /* unparseable: kept as sent, received */
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"yesterday at noon\"}");
    assert_str(&ev, "@timestamp", "yesterday at noon");
    assert_true(ev.ts_us == RECEIVED_US);
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":1714566896000}");
    assert_int(&ev, "@timestamp", 1714566896000LL);
    assert_true(ev.ts_us == RECEIVED_US);
    /* before 1970: never a negative ts */
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"1969-12-31T23:59:59Z\"}");
    assert_str(&ev, "@timestamp", "1969-12-31T23:59:59.000000Z");
    assert_true(ev.ts_us == RECEIVED_US);
    /* bounds: one hour back allowed, one minute ahead allowed */
    f->stamp.max_past_us = 3600LL * 1000000;
    f->stamp.max_future_us = 60LL * 1000000;
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"2024-05-01T11:34:56Z\"}"); /* exactly 1 h back */
    assert_true(ev.ts_us == RECEIVED_US - 3600LL * 1000000);
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"2024-05-01T11:34:55Z\"}"); /* 1 s too old */
    assert_true(ev.ts_us == RECEIVED_US);
    assert_str(&ev, "@timestamp", "2024-05-01T11:34:55.000000Z");
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"2024-05-01T12:35:56Z\"}"); /* exactly 1 min ahead */
    assert_true(ev.ts_us == RECEIVED_US + 60LL * 1000000);
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"2024-05-01T12:35:56.000001Z\"}");
    assert_true(ev.ts_us == RECEIVED_US);
    /* huge bounds do not overflow */
    f->stamp.max_past_us = INT64_MAX;
    f->stamp.max_future_us = INT64_MAX;
    ev = must_norm(f, EVENT_FORMAT_ECS, "{\"@timestamp\":\"9999-12-31T23:59:59Z\"}");
    assert_true(ev.ts_us == 253402300799000000LL);
}

static void test_ecs_integer_fields_are_coerced(void **state)
{
    struct fixture *f = *state;
    mamori_event ev = must_norm(f, EVENT_FORMAT_ECS,
                                "{\"process\":{\"pid\":\"4242\",\"parent\":{\"pid\":\"0x10\"}},\"source.port\":\"-1\","
                                "\"destination.port\":\"0080\",\"user.id\":\"1000\",\"winlog.event_id\":\"4688\"}");
    assert_int(&ev, "process.pid", 4242);
    assert_str(&ev, "process.parent.pid", "0x10"); /* not decimal: kept as sent */
    assert_int(&ev, "source.port", -1);
    assert_str(&ev, "destination.port", "0080"); /* not canonical decimal */
    assert_str(&ev, "user.id", "1000");          /* a keyword in ECS */
    assert_int(&ev, "winlog.event_id", 4688);
}

static void test_ecs_unicode_and_escapes(void **state)
{
    struct fixture *f = *state;
    mamori_event ev = must_norm(f, EVENT_FORMAT_ECS,
                                "{\"\xe3\x83\x97\xe3\x83\xad\xe3\x82\xbb\xe3\x82\xb9\":{\"\xf0\x9f\x94\x91\":\"\\u0001\\t\\\\x\"},"
                                "\"bad\":\"\xff\",\"cmd\":\"C:\\\\Windows\\\\System32\\\\cmd.exe /c \\\"echo hi\\\"\"}");
    check_invariants(f, &ev);
    assert_non_null(strstr(ev.json, "\"\xe3\x83\x97\xe3\x83\xad\xe3\x82\xbb\xe3\x82\xb9\":{\"\xf0\x9f\x94\x91\":\"\\u0001\\t\\\\x\"}"));
    assert_non_null(strstr(ev.json, "\"cmd\":\"C:\\\\Windows\\\\System32\\\\cmd.exe /c \\\"echo hi\\\"\""));
    assert_str(&ev, "bad", "\xef\xbf\xbd");
}

#define SYSMON "\"Channel\":\"Microsoft-Windows-Sysmon/Operational\""

/* process.name from the last '\\' or '/' of Image and the Hashes values lowered are found a
 * word at a time: separators of both kinds at every offset of paths of 0..40 bytes, none at
 * all, one at the very end, bytes >= 0x80; hash text of 1..40 bytes with upper case, lower
 * case, the bytes next to 'A'..'Z' and UTF-8 whose low 7 bits are upper-case letters. Each
 * checked against a byte-at-a-time reference on the event's own values. */

static void test_enrichment_word_at_a_time(void **state)
{
    struct fixture *f = *state;
    static const char filler[] = "abc\xc3\xa9@[`{ZAz0";
    for (size_t len = 0; len <= 40; len++) {
        for (size_t sep = 0; sep <= len + 1; sep++) {
            char path[64], hash[64], event[512];
            for (size_t k = 0; k < len; k++) path[k] = filler[(k * 7 + len) % (sizeof filler - 1)];
            for (size_t k = 0; k < len; k++) hash[k] = filler[(k * 5 + sep) % (sizeof filler - 1)];
            /* sep == len + 1: no separator; else one at sep (or at the end) and one of the other kind before it */
            if (sep < len) path[sep] = (sep & 1) ? '/' : '\\';
            if (sep < len && sep > 3) path[sep / 2] = (sep & 1) ? '\\' : '/';
            if (len) hash[len / 2] = 'Q';
            if (len >= 2) memcpy(hash + sep % (len - 1), "\xc3\x81", 2); /* U+00C1: 0xC3's low 7 bits are 'C' */
            /* a UTF-8 sequence cut by the separators may be replaced by the parser: fine, the
             * reference below reads the parsed values */
            char path_json[160];
            size_t o = 0;
            for (size_t k = 0; k < len; k++) {
                if (path[k] == '\\') path_json[o++] = '\\';
                path_json[o++] = path[k];
            }
            path_json[o] = '\0';
            hash[len] = '\0';
            snprintf(event, sizeof event,
                     "{\"EventID\":1," SYSMON ",\"Image\":\"%s\",\"Hashes\":\"SHA1=x,MD5=%s,IMPHASH=AbC\"}", path_json,
                     len ? hash : "Q");
            mamori_event ev = must_norm(f, EVENT_FORMAT_AUTO, event);
            const json_value *exe = get(&ev, "process.executable");
            assert_non_null(exe);
            size_t start = exe->len;
            while (start > 0 && exe->str[start - 1] != '\\' && exe->str[start - 1] != '/') start--;
            const json_value *name = get(&ev, "process.name");
            if (start == exe->len) {
                assert_null(name);
            } else {
                assert_non_null(name);
                assert_int_equal(name->len, exe->len - start);
                assert_memory_equal(name->str, exe->str + start, name->len);
            }
            const json_value *hashes = get(&ev, "winlog.event_data.Hashes");
            assert_non_null(hashes);
            const char *md5 = (const char *)memchr(hashes->str, ',', hashes->len) + 5; /* after ",MD5=" */
            const char *md5_end = memchr(md5, ',', hashes->len - (size_t)(md5 - hashes->str));
            char want[128];
            size_t want_len = (size_t)(md5_end - md5);
            for (size_t k = 0; k < want_len; k++)
                want[k] = (char)(md5[k] >= 'A' && md5[k] <= 'Z' ? md5[k] + 32 : md5[k]);
            const json_value *got = get(&ev, "process.hash.md5");
            assert_non_null(got);
            assert_int_equal(got->len, want_len);
            assert_memory_equal(got->str, want, want_len);
            assert_str(&ev, "process.pe.imphash", "abc");
        }
    }
}

/* A Hashes value naming one algorithm many times: the first is the one kept, and thousands of
 * items are one field each, not thousands of entries (they used to overrun the entry space:
 * an assertion, the process gone, for one bad event). */
static void test_hashes_repeated(void **state)
{
    struct fixture *f = *state;
    mamori_event a = must_norm(f, EVENT_FORMAT_AUTO,
                               "{\"EventID\":1," SYSMON ",\"Image\":\"a.exe\",\"Hashes\":\"MD5=AA,sha1=S1,md5=BB,MD5=CC,SHA1=S2\"}");
    assert_str(&a, "process.hash.md5", "aa");
    assert_str(&a, "process.hash.sha1", "s1");
    static char event[32768];
    int len = snprintf(event, sizeof event, "{\"EventID\":1," SYSMON ",\"Image\":\"a.exe\",\"Hashes\":\"");
    for (int k = 0; k < 3000; k++) len += snprintf(event + len, sizeof event - (size_t)len, "%sMD5=%X", k ? "," : "", k + 10);
    snprintf(event + len, sizeof event - (size_t)len, "\"}");
    mamori_event b = must_norm(f, EVENT_FORMAT_AUTO, event);
    assert_str(&b, "process.hash.md5", "a");
    assert_true(b.field_count < 64);
}

/* The leaf/object conflict check runs while the field array is copied, or on its own first
 * when the array is sorted bytewise (a path byte below '.') or the event has too many fields:
 * the same rejections, in the same precedence (the conflict before the count). */
static void test_conflicts_in_every_path(void **state)
{
    struct fixture *f = *state;
    expect_reject(f, EVENT_FORMAT_ECS, "{\"b\":1,\"a\":1,\"a.b\":2}", "conflicting field 'a'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"b\":1,\"a\":1,\"a.b\":2,\"x\\u0001\":3}", "conflicting field 'a'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"a\\u0001\":1,\"a\":1,\"a.b\":2}", "conflicting field 'a'");
    expect_reject(f, EVENT_FORMAT_ECS, "{\"zz\":{\"a\":1},\"zz.a.b\":2}", "conflicting field 'zz.a'");
    mamori_event ok = must_norm(f, EVENT_FORMAT_ECS, "{\"a\":1,\"a\\u0001\":2,\"ab\":3}");
    assert_int(&ok, "a", 1);
    /* input within the limit, the stamps past it */
    static char big[40000];
    for (int conflict = 0; conflict < 2; conflict++) {
        int len = snprintf(big, sizeof big, "{%s", conflict ? "\"a\":1,\"a.b\":2" : "\"a\":1,\"b\":2");
        for (int k = 0; k < EVENT_MAX_FIELDS - 3; k++) len += snprintf(big + len, sizeof big - (size_t)len, ",\"f%04d\":%d", k, k);
        snprintf(big + len, sizeof big - (size_t)len, "}");
        expect_reject(f, EVENT_FORMAT_ECS, big, conflict ? "conflicting field 'a'" : "too many fields");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ecs_flatten_and_dotted_keys_are_equivalent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_canonical_output_is_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_sorting_with_bytes_below_dot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_duplicates_and_conflicts_are_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_not_an_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_mamori_fields_cannot_be_spoofed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_host_id_defaults_to_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_integer_fields_are_coerced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_unicode_and_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enrichment_word_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hashes_repeated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts_in_every_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
