/* tests/unit/core/test_normalize_cache.c — the normalizer's per-thread caches (norm3):
 * the NXLog shape cache (top-level key classification and ecs_map rows, per key sequence)
 * and the sort cache (the sorted order per entry path sequence, verified before use). A
 * normalizer that has seen many events must give exactly what a fresh one gives: every event
 * here is normalized by the warm normalizer and by a new one and the two compared (canonical
 * JSON, deferred JSON, field paths). The sort cache is also driven directly with a forced
 * hash collision (core/normalize_internal.h). And NXLog's numeric System fields, which
 * are kept as the parser's value when that is what converting them would make, and the
 * Keywords mask's hex text. */
#include "normalize_fixture.h"

#include "core/normalize_internal.h"

/* text through the warm normalizer and through a fresh one: the same event or the same
 * rejection. */
static void expect_as_fresh_in(struct fixture *f, enum event_format format, const char *text)
{
    mamori_event warm, cold;
    int warm_rc = norm_text(f, format, text, &warm);
    char warm_err[sizeof f->err];
    memcpy(warm_err, f->err, sizeof warm_err);
    normalizer *saved = f->norm;
    f->norm = normalizer_create();
    int cold_rc = norm_text(f, format, text, &cold);
    normalizer_destroy(f->norm);
    f->norm = saved;
    if (warm_rc != cold_rc) fail_msg("rc %d warm, %d fresh (%s / %s): %s", warm_rc, cold_rc, warm_err, f->err, text);
    if (warm_rc) {
        assert_string_equal(warm_err, f->err);
        return;
    }
    check_invariants(f, &warm);
    assert_same_event(&warm, &cold);
    for (uint32_t i = 0; i < warm.field_count; i++) {
        const event_field *a = &warm.fields[i], *b = &cold.fields[i];
        assert_int_equal(a->path_hash, b->path_hash);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->flags, b->flags);
        assert_int_equal(a->text_len, b->text_len);
        if (a->text) assert_memory_equal(a->text, b->text, a->text_len);
        else assert_null(b->text);
    }
}

static void expect_as_fresh(struct fixture *f, const char *text) { expect_as_fresh_in(f, EVENT_FORMAT_AUTO, text); }

/* Each event twice (the second meets its own shape), then the whole list again. */
static void expect_list_as_fresh(struct fixture *f, const char *const *events, size_t count)
{
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < count; i++) {
            expect_as_fresh(f, events[i]);
            expect_as_fresh(f, events[i]);
        }
}

#define SYSMON "\"Channel\":\"Microsoft-Windows-Sysmon/Operational\""

static void test_value_dependent_decisions_with_one_shape(void **state)
{
    struct fixture *f = *state;
    /* the same top-level keys each time; what changes is a value the NXLog rules look at */
    static const char *const events[] = {
        /* ProcessID: a number is the System pid, text stays EventData */
        "{\"EventID\":1," SYSMON ",\"ProcessID\":4,\"Image\":\"C:\\\\a.exe\"}",
        "{\"EventID\":1," SYSMON ",\"ProcessID\":\"4\",\"Image\":\"C:\\\\a.exe\"}",
        /* AccountName is System only with a UserID; an object UserID is not one (flattened) */
        "{\"EventID\":4688,\"Channel\":\"Security\",\"UserID\":\"S-1-5-18\",\"AccountName\":\"SYSTEM\"}",
        "{\"EventID\":4688,\"Channel\":\"Security\",\"UserID\":{\"x\":1},\"AccountName\":\"SYSTEM\"}",
        /* NXLog's own EventType is dropped, Sysmon's stays EventData */
        "{\"EventID\":13," SYSMON ",\"EventType\":\"INFO\",\"TargetObject\":\"HKLM\\\\x\"}",
        "{\"EventID\":13," SYSMON ",\"EventType\":\"SetValue\",\"TargetObject\":\"HKLM\\\\x\"}",
        "{\"EventID\":13," SYSMON ",\"EventType\":\"AUDIT_SUCCESS\",\"TargetObject\":\"HKLM\\\\x\"}",
        /* an EventData value that is an object keeps its structure; a System key's object is ECS */
        "{\"EventID\":1," SYSMON ",\"ProcessID\":4,\"Image\":{\"a\":\"b\",\"#text\":\"C:\\\\c.exe\"}}",
        "{\"EventID\":1," SYSMON ",\"ProcessID\":4,\"Image\":{\"a\":\"b\",\"c\":\"d\"}}",
        "{\"EventID\":1," SYSMON ",\"ProcessID\":{\"q\":1},\"Image\":\"C:\\\\a.exe\"}",
        /* the event id changes the logsource and so the ecs_map row of Description */
        "{\"EventID\":1," SYSMON ",\"Description\":\"d\",\"ProcessGuid\":\"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}\"}",
        "{\"EventID\":7," SYSMON ",\"Description\":\"d\",\"ProcessGuid\":\"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}\"}",
        "{\"EventID\":255," SYSMON ",\"Description\":\"d\",\"ProcessGuid\":\"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}\"}",
        "{\"EventID\":\"x\"," SYSMON ",\"Description\":\"d\",\"ProcessGuid\":\"not a guid\"}",
        /* the channel too, with the same key lengths */
        "{\"EventID\":4688,\"Channel\":\"Security\",\"CommandLine\":\"cmd\",\"NewProcessId\":\"0x10\"}",
        "{\"EventID\":4688,\"Channel\":\"Securitz\",\"CommandLine\":\"cmd\",\"NewProcessId\":\"16\"}",
    };
    expect_list_as_fresh(f, events, sizeof events / sizeof events[0]);
    /* and the decisions themselves, after the cache has seen both sides */
    mamori_event a = must_norm(f, EVENT_FORMAT_AUTO, events[0]);
    assert_int(&a, "winlog.process.pid", 4);
    assert_absent(&a, "winlog.event_data.ProcessID");
    mamori_event b = must_norm(f, EVENT_FORMAT_AUTO, events[1]);
    assert_absent(&b, "winlog.process.pid");
    assert_int(&b, "process.pid", 4); /* EventData ProcessID, mapped (caselessly) */
    mamori_event c = must_norm(f, EVENT_FORMAT_AUTO, events[3]);
    assert_absent(&c, "winlog.user.name");
    assert_str(&c, "user.name", "SYSTEM"); /* EventData AccountName, mapped */
    mamori_event d = must_norm(f, EVENT_FORMAT_AUTO, events[2]);
    assert_str(&d, "winlog.user.name", "SYSTEM");
    mamori_event e = must_norm(f, EVENT_FORMAT_AUTO, events[5]);
    assert_str(&e, "winlog.event_data.EventType", "SetValue");
    mamori_event g = must_norm(f, EVENT_FORMAT_AUTO, events[4]);
    assert_absent(&g, "winlog.event_data.EventType");
    mamori_event h = must_norm(f, EVENT_FORMAT_AUTO, events[10]);
    assert_str(&h, "process.pe.description", "d");
    mamori_event i = must_norm(f, EVENT_FORMAT_AUTO, events[11]);
    assert_str(&i, "file.pe.description", "d");
    assert_absent(&i, "process.pe.description");
}

static void test_keys_that_differ_by_little(void **state)
{
    struct fixture *f = *state;
    static const char *const events[] = {
        "{\"EventID\":1," SYSMON ",\"Image\":\"C:\\\\a.exe\",\"User\":\"u\"}",
        /* one key byte changed (same lengths: the same slot, the bytes differ) */
        "{\"EventID\":1," SYSMON ",\"Imagf\":\"C:\\\\a.exe\",\"User\":\"u\"}",
        "{\"EventID\":1," SYSMON ",\"image\":\"C:\\\\a.exe\",\"User\":\"u\"}",
        "{\"EventID\":1," SYSMON ",\"Image\":\"C:\\\\a.exe\",\"Usex\":\"u\"}",
        "{\"EventID\":1,\"Channem\":\"Microsoft-Windows-Sysmon/Operational\",\"Image\":\"C:\\\\a.exe\",\"User\":\"u\"}",
        /* the same keys in another order */
        "{\"User\":\"u\",\"Image\":\"C:\\\\a.exe\"," SYSMON ",\"EventID\":1}",
        "{" SYSMON ",\"EventID\":1,\"User\":\"u\",\"Image\":\"C:\\\\a.exe\"}",
        /* names that sanitize_name changes, or with bytes below '.', at the same places */
        "{\"EventID\":1," SYSMON ",\"Ima e\":\"C:\\\\a.exe\",\"Us.r\":\"u\"}",
        "{\"EventID\":1," SYSMON ",\"Ima-e\":\"C:\\\\a.exe\",\"Us+r\":\"u\"}",
        "{\"EventID\":1," SYSMON ",\"     \":\"C:\\\\a.exe\",\"\":\"u\"}",
        /* a key twice: rejected, then the shape without it is fine */
        "{\"EventID\":1," SYSMON ",\"Image\":\"C:\\\\a.exe\",\"Image\":\"u\"}",
        "{\"EventID\":1," SYSMON ",\"Image\":\"C:\\\\a.exe\",\"Imag\":\"u\"}",
        "{\"EventID\":1,\"EventID\":1," SYSMON ",\"Image\":\"C:\\\\a.exe\"}",
        /* two names mapping to one path: the loser goes back to EventData (settled each time) */
        "{\"EventID\":4688,\"Channel\":\"Security\",\"ProcessId\":\"0x4\",\"NewProcessId\":\"0x8\"}",
        "{\"EventID\":4688,\"Channel\":\"Security\",\"ProcessId\":\"4\",\"NewProcessId\":\"8\"}",
        "{\"EventID\":4688,\"Channel\":\"Security\",\"ProcessId\":\"4\",\"NewProcessId\":\"4\"}",
    };
    expect_list_as_fresh(f, events, sizeof events / sizeof events[0]);
    mamori_event a = must_norm(f, EVENT_FORMAT_AUTO, events[1]);
    assert_str(&a, "winlog.event_data.Imagf", "C:\\a.exe");
    assert_absent(&a, "process.executable");
    mamori_event b = must_norm(f, EVENT_FORMAT_AUTO, events[0]);
    assert_str(&b, "process.executable", "C:\\a.exe");
    assert_str(&b, "process.name", "a.exe");
    mamori_event c = must_norm(f, EVENT_FORMAT_AUTO, events[7]);
    assert_str(&c, "winlog.event_data.Imae", "C:\\a.exe");
    assert_str(&c, "winlog.event_data.Us_r", "u");
    mamori_event d = must_norm(f, EVENT_FORMAT_AUTO, events[14]);
    assert_int(&d, "process.pid", 8);
    assert_int(&d, "winlog.event_data.ProcessId", 4); /* the loser, displaced */
    /* names at the path limit (winlog.event_data. + 238 bytes) and one byte past it, each after
     * its own shape, and plain names whose values turn into objects */
    char name[300], text[512];
    for (size_t len = 236; len <= 240; len++) {
        for (size_t k = 0; k < len; k++) name[k] = (char)('a' + k % 26);
        name[len] = '\0';
        snprintf(text, sizeof text, "{\"EventID\":1," SYSMON ",\"%s\":\"v\",\"Image\":\"x\"}", name);
        expect_as_fresh(f, text);
        expect_as_fresh(f, text);
        if (EVENT_DATA_PREFIX_LEN + len > EVENT_MAX_PATH_BYTES) {
            expect_reject(f, EVENT_FORMAT_AUTO, text, "field path too long");
        } else {
            char path[320];
            snprintf(path, sizeof path, "winlog.event_data.%s", name);
            mamori_event ev = must_norm(f, EVENT_FORMAT_AUTO, text);
            assert_str(&ev, path, "v");
        }
        snprintf(text, sizeof text, "{\"EventID\":1," SYSMON ",\"%s\":{\"#text\":\"w\"},\"Image\":{\"a\":1}}", name);
        expect_as_fresh(f, text);
    }
    expect_reject(f, EVENT_FORMAT_AUTO, text, "field path too long");
}

/* More shapes than the caches have slots, each seen twice, in two rounds: evictions and
 * slot collisions (same member count and key lengths, different bytes). */
static void test_many_shapes(void **state)
{
    struct fixture *f = *state;
    enum { SHAPES = 300 };
    static char texts[SHAPES][1024];
    static const char *events[SHAPES];
    for (int i = 0; i < SHAPES; i++) {
        int len = snprintf(texts[i], sizeof texts[i], "{\"EventID\":%d," SYSMON ",\"Image\":\"C:\\\\%d.exe\"", i % 30, i);
        /* i % 40 extra members named A000, A001, … B000 …: many shapes share a member count
         * and key lengths and differ only in bytes */
        for (int k = 0; k < i % 40; k++)
            len += snprintf(texts[i] + len, sizeof texts[i] - (size_t)len, ",\"%c%03d\":\"v\"", 'A' + i % 26, k);
        snprintf(texts[i] + len, sizeof texts[i] - (size_t)len, "}");
        events[i] = texts[i];
    }
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < SHAPES; i++) {
            arena_reset(&f->arena);
            expect_as_fresh(f, events[i]);
            expect_as_fresh(f, events[(i * 7) % SHAPES]);
        }
    /* more top-level members than a shape holds: not remembered, still right */
    char big[8192];
    int len = snprintf(big, sizeof big, "{\"EventID\":1," SYSMON);
    for (int k = 0; k < (int)NX_SHAPE_MEMBERS_MAX + 10; k++)
        len += snprintf(big + len, sizeof big - (size_t)len, ",\"Field%03d\":\"%d\"", k, k);
    snprintf(big + len, sizeof big - (size_t)len, "}");
    expect_as_fresh(f, big);
    expect_as_fresh(f, big);
    /* more entries than the sort cache remembers (ECS, in reverse order) */
    len = snprintf(big, sizeof big, "{");
    for (int k = (int)SORT_CACHE_ENTRIES_MAX + 20; k > 0; k--)
        len += snprintf(big + len, sizeof big - (size_t)len, "%s\"f%03d\":%d", k > (int)SORT_CACHE_ENTRIES_MAX + 19 ? "" : ",", k, k);
    snprintf(big + len, sizeof big - (size_t)len, "}");
    expect_as_fresh(f, big);
    expect_as_fresh(f, big);
}

/* The sort cache driven directly: two entry lists forced onto one shape hash. The second
 * must not take the first's order (the check fails and it is sorted), and a hit with equal
 * paths reports them (no_equal false). */
static void sort_with_shape(normalizer *n, const char *const *paths, uint32_t count, uint64_t shape, bool *no_equal,
                            const char **out)
{
    static const json_value v = {.type = JSON_NULL};
    n->entry_count = 0;
    for (uint32_t i = 0; i < count; i++) {
        norm_push_entry(n, paths[i], strlen(paths[i]), &v, KIND_INPUT);
        n->order[i] = &n->entries[i];
    }
    (void)norm_order_shape(n, count); /* the positions; the hash is forced */
    norm_sort_cached(n, count, shape, true, no_equal);
    for (uint32_t i = 0; i < count; i++) out[i] = n->order[i]->path;
}

static void test_sort_cache_collision(void **state)
{
    (void)state;
    normalizer *n = normalizer_create();
    static const char *const first[] = {"z", "winlog.event_data.b", "a.b", "winlog.event_data.a", "host.name", "a"};
    static const char *const second[] = {"a", "winlog.event_data.a", "host.name", "winlog.event_data.b", "a.b", "z"};
    static const char *const want[] = {"a", "a.b", "host.name", "winlog.event_data.a", "winlog.event_data.b", "z"};
    static const char *const dups[] = {"b", "a", "b", "a.c", "winlog.event_data.x", "winlog.event_data.x"};
    enum { COUNT = 6 };
    const char *out[COUNT];
    bool no_equal;
    for (int pass = 0; pass < 2; pass++) { /* a miss, then a hit */
        sort_with_shape(n, first, COUNT, 42, &no_equal, out);
        for (int i = 0; i < COUNT; i++) assert_string_equal(out[i], want[i]);
        assert_true(no_equal == (pass == 1)); /* known only on a hit */
    }
    sort_with_shape(n, second, COUNT, 42, &no_equal, out); /* same hash, other push order */
    for (int i = 0; i < COUNT; i++) assert_string_equal(out[i], want[i]);
    /* equal paths: stable (push order kept), reported on a hit */
    for (int pass = 0; pass < 2; pass++) {
        sort_with_shape(n, dups, COUNT, 42, &no_equal, out);
        assert_false(no_equal);
        assert_ptr_equal(n->order[0], &n->entries[1]); /* a */
        assert_ptr_equal(n->order[1], &n->entries[3]); /* a.c */
        assert_ptr_equal(n->order[2], &n->entries[0]); /* b, pushed first */
        assert_ptr_equal(n->order[3], &n->entries[2]);
        assert_ptr_equal(n->order[4], &n->entries[4]);
        assert_ptr_equal(n->order[5], &n->entries[5]);
    }
    /* the dups' order with another hash, then the first list onto it: verified and re-sorted */
    sort_with_shape(n, first, COUNT, 42, &no_equal, out);
    for (int i = 0; i < COUNT; i++) assert_string_equal(out[i], want[i]);
    normalizer_destroy(n);
}

/* NXLog's numeric System fields: a JSON integer with canonical text is kept as the DOM value
 * (norm_as_long_text); anything else becomes text first, an integer only if canonical. */
static void test_numeric_system_fields(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *task;
        bool integer;
        int64_t i;
        const char *text;
    } cases[] = {
        {"0", true, 0, "0"},
        {"-7", true, -7, "-7"},
        {"9223372036854775807", true, INT64_MAX, "9223372036854775807"},
        {"-9223372036854775808", false, 0, "-9223372036854775808"}, /* parse_decimal stops at INT64_MAX */
        {"9223372036854775808", false, 0, "9223372036854775808"},
        {"-0", false, 0, "-0"},
        {"1.5", false, 0, "1.5"},
        {"1e2", false, 0, "1e2"},
        {"\"12\"", true, 12, "12"},
        {"\"012\"", false, 0, "012"},
        {"true", false, 0, "true"},
        /* text read a word at a time (up to 8 digits): the bytes next to '0'..'9', widths 1..9 */
        {"\"7\"", true, 7, "7"},
        {"\"99999999\"", true, 99999999, "99999999"},
        {"\"100000000\"", true, 100000000, "100000000"},
        {"\"12345678\"", true, 12345678, "12345678"},
        {"\"-12345678\"", true, -12345678, "-12345678"},
        {"\"1234/678\"", false, 0, "1234/678"},
        {"\"1234:678\"", false, 0, "1234:678"},
        {"\"/\"", false, 0, "/"},
        {"\":\"", false, 0, ":"},
        {"\"12 \"", false, 0, "12 "},
        {"\"1\\u00012\"", false, 0, "1\x01" "2"},
        {"\"1\\u00b92\"", false, 0, "1\xc2\xb9" "2"},
        {"\"\\u00b9\"", false, 0, "\xc2\xb9"},
        {"\"-\"", false, 0, "-"},
        {"\"\"", false, 0, ""},
        {"\"00\"", false, 0, "00"},
        {"\"+1\"", false, 0, "+1"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char text[256];
        snprintf(text, sizeof text, "{\"EventID\":1," SYSMON ",\"Task\":%s,\"RecordNumber\":%s}", cases[k].task,
                 cases[k].task);
        expect_as_fresh(f, text);
        mamori_event ev = must_norm(f, EVENT_FORMAT_AUTO, text);
        static const char *const paths[] = {"winlog.task", "winlog.record_id"};
        for (size_t p = 0; p < 2; p++) {
            const json_value *v = get(&ev, paths[p]);
            assert_non_null(v);
            if (cases[k].integer) {
                assert_int(&ev, paths[p], cases[k].i);
            } else {
                assert_int_equal(v->type, JSON_STRING);
                assert_int_equal(v->len, strlen(cases[k].text));
                assert_memory_equal(v->str, cases[k].text, v->len);
            }
            const event_field *fld = NULL;
            for (uint32_t i = 0; i < ev.field_count; i++)
                if (strcmp(ev.fields[i].path, paths[p]) == 0) fld = &ev.fields[i];
            assert_non_null(fld);
            assert_int_equal(fld->text_len, strlen(cases[k].text));
            assert_memory_equal(fld->text, cases[k].text, fld->text_len);
        }
    }
}

/* Keywords as NXLog prints them (a signed integer) or as hex text: "0x" and lower-case hex
 * without leading zeros (hex16 makes all 16 digits at once, the leading zeros are cut). */
static void test_keywords_hex(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"0", "0x0"},
        {"9", "0x9"},
        {"10", "0xa"},
        {"15", "0xf"},
        {"16", "0x10"},
        {"255", "0xff"},
        {"4096", "0x1000"},
        {"81985529216486895", "0x123456789abcdef"},
        {"-9223372036854775808", "0x8000000000000000"},
        {"-9218868437227405312", "0x8010000000000000"},
        {"-1", "0xffffffffffffffff"},
        {"-6066930334832433271", "0xabcdef0123456789"},
        {"\"0xABC\"", "0xabc"},
        {"\"0X00ff\"", "0xff"},
        {"\"0x0000000000000000\"", "0x0"},
        {"\"0xfedcba9876543210\"", "0xfedcba9876543210"},
        {"\"0x\"", "0x"},
        {"\"0xg1\"", "0xg1"},
        {"\"Audit Success\"", "Audit Success"},
        /* canonical text kept as sent; anything else made again: every width 1..16, leading
         * zeros, upper case, the bytes next to the hex ranges in either word, 17 digits */
        {"\"0x8000000000000000\"", "0x8000000000000000"},
        {"\"0x0\"", "0x0"},
        {"\"0x00\"", "0x0"},
        {"\"0x01\"", "0x1"},
        {"\"0xa\"", "0xa"},
        {"\"0xA\"", "0xa"},
        {"\"0x1234567\"", "0x1234567"},
        {"\"0x12345678\"", "0x12345678"},
        {"\"0x123456789\"", "0x123456789"},
        {"\"0x12345678F\"", "0x12345678f"},
        {"\"0xF23456789\"", "0xf23456789"},
        {"\"0x1234:6789\"", "0x1234:6789"},
        {"\"0x1234/6789\"", "0x1234/6789"},
        {"\"0x1234567g\"", "0x1234567g"},
        {"\"0x12345678`\"", "0x12345678`"},
        {"\"0x123456789abcdef@\"", "0x123456789abcdef@"},
        {"\"0x123456789abcdef0\"", "0x123456789abcdef0"},
        {"\"0x0123456789abcdef\"", "0x123456789abcdef"},
        {"\"0x1234\\u00e9\"", "0x1234\xc3\xa9"},
        {"\"0x123456789abcdef01\"", "0x123456789abcdef01"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char text[256];
        snprintf(text, sizeof text, "{\"EventID\":1," SYSMON ",\"Keywords\":%s}", cases[k].in);
        mamori_event ev = must_norm(f, EVENT_FORMAT_AUTO, text);
        assert_str(&ev, "winlog.keywords", cases[k].want);
    }
}

/* The event time's memo (clock_rfc3339_memo in the normalizer): consecutive events of one shape
 * whose timestamps share all but a few bytes, cross a second, minute, hour, day, month or year,
 * have fractions of every length, offsets, and invalid ones right after a valid one with the
 * same first 19 bytes (the winlog fallbacks then decide) — each as a fresh normalizer makes it. */
static void test_event_time_memo(void **state)
{
    struct fixture *f = *state;
    static const char *const stamps[] = {
        "2020-10-22T03:52:01.720Z", "2020-10-22T03:52:01.721Z", "2020-10-22T03:52:01.720Z", "2020-10-22T03:52:02.000Z",
        "2020-10-22T03:52:59.999Z", "2020-10-22T03:53:00.000Z", "2020-10-22T03:59:59.999999Z", "2020-10-22T04:00:00Z",
        "2020-10-22T23:59:59.9Z", "2020-10-23T00:00:00.1Z", "2020-10-31T23:59:59.999Z", "2020-11-01T00:00:00.000Z",
        "2020-12-31T23:59:59.999999999Z", "2021-01-01T00:00:00.000000001Z", "2020-02-29T12:00:00Z", "2020-02-31T12:00:00Z",
        "2021-01-01T00:00:00", "2021-01-01T00:00:00.5", "2021-01-01T00:00:00.12", "2021-01-01T00:00:00.1234",
        "2021-01-01T00:00:00.12345", "2021-01-01T00:00:00.123456", "2021-01-01T00:00:00.1234567",
        "2021-01-01T00:00:00.12345678", "2021-01-01T00:00:00.1234567890", /* ten digits: invalid */
        "2021-01-01T00:00:00.123+01:00", "2021-01-01T00:00:00.123-01:30", "2021-01-01T00:00:00.123+14:00",
        "2021-01-01T00:00:00.123+24:00", "2021-01-01T00:00:00.123+01", "2021-01-01T00:00:00.Z",
        "2021-01-01T00:00:00.123", "2021-01-01T00:00:00.123ZZ", "2021-01-01 00:00:00.123", "2021-01-01t00:00:00.123z",
        "2021-01-01T00:00:60.123Z", "2021-01-01T00:00:61.123Z", "2021-01-01T24:00:00.123Z", "2021-13-01T00:00:00.123Z",
        "2021-01-01T00:00:0", "2021-01-01X00:00:00.123Z", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "", "2021-01-01T00:00:00.123Z",
    };
    char event[512];
    for (size_t i = 0; i < sizeof stamps / sizeof stamps[0]; i++) {
        /* NXLog with @timestamp, with EventTime (the fallback) and with both */
        snprintf(event, sizeof event, "{\"EventID\":1," SYSMON ",\"@timestamp\":\"%s\",\"Image\":\"a.exe\"}", stamps[i]);
        expect_as_fresh(f, event);
        snprintf(event, sizeof event,
                 "{\"EventID\":1," SYSMON ",\"@timestamp\":\"%s\",\"EventTime\":\"2020-10-22 03:52:01\",\"Image\":\"a.exe\"}",
                 stamps[i]);
        expect_as_fresh(f, event);
        snprintf(event, sizeof event, "{\"EventID\":1," SYSMON ",\"UtcTime\":\"%s\",\"Image\":\"a.exe\"}", stamps[i]);
        expect_as_fresh(f, event);
        /* ECS */
        snprintf(event, sizeof event, "{\"@timestamp\":\"%s\",\"process\":{\"name\":\"a.exe\"}}", stamps[i]);
        expect_as_fresh(f, event);
    }
    /* a cached prefix whose rest is invalid, then valid again: the time comes from the fallback */
    mamori_event a = must_norm(f, EVENT_FORMAT_AUTO, "{\"EventID\":1," SYSMON ",\"@timestamp\":\"2022-05-06T07:08:09.5Z\"}");
    assert_str(&a, "@timestamp", "2022-05-06T07:08:09.500000Z");
    mamori_event b = must_norm(f, EVENT_FORMAT_AUTO,
                               "{\"EventID\":1," SYSMON ",\"@timestamp\":\"2022-05-06T07:08:09.5Q\",\"EventTime\":\"2022-05-06 07:08:10\"}");
    assert_str(&b, "@timestamp", "2022-05-06T07:08:10.000000Z");
    mamori_event c = must_norm(f, EVENT_FORMAT_AUTO, "{\"EventID\":1," SYSMON ",\"@timestamp\":\"2022-05-06T07:08:09.25+02:00\"}");
    assert_str(&c, "@timestamp", "2022-05-06T05:08:09.250000Z");
}

/* detect_shape skipped for an NXLog key sequence seen before: only when its keys alone decide.
 * The same keys under another format, keys whose values detect_shape reads ("Event",
 * "winlog") and flat Winlogbeat keys — each as a fresh normalizer makes it, in every order. */
static void test_shape_by_keys(void **state)
{
    struct fixture *f = *state;
    static const char *const events[] = {
        "{\"EventID\":1," SYSMON ",\"Image\":\"a.exe\"}",
        "{\"EventID\":1,\"Chanel\":\"x\",\"Image\":\"a.exe\"}", /* no channel: NXLog for format winlog only */
        "{\"EventID\":1,\"SourceName\":\"x\",\"Image\":\"a.exe\"}",
        "{\"EventID\":1," SYSMON ",\"Event\":\"text\"}",
        "{\"EventID\":1," SYSMON ",\"Event\":{\"System\":{\"EventID\":4,\"Channel\":\"Security\"}}}",
        "{\"EventID\":1," SYSMON ",\"Event\":{\"Other\":1}}",
        "{\"EventID\":1," SYSMON ",\"winlog\":\"text\"}",
        "{\"EventID\":1," SYSMON ",\"winlog\":{\"channel\":\"Security\"}}",
        "{\"EventID\":1," SYSMON ",\"winlog\":{\"other\":1}}",
        "{\"EventID\":1," SYSMON ",\"winlog.channel\":\"Security\"}",
        "{\"EventID\":1," SYSMON ",\"winlog.event_data.x\":\"y\"}",
        "{\"EventID\":1," SYSMON ",\"winlog.event_dataz\":\"y\"}",
    };
    static const enum event_format formats[] = {EVENT_FORMAT_AUTO, EVENT_FORMAT_WINLOG, EVENT_FORMAT_ECS};
    const size_t count = sizeof events / sizeof events[0];
    for (size_t round = 0; round < 2; round++)
        for (size_t i = 0; i < count; i++)
            for (size_t k = 0; k < 3; k++)
                for (size_t j = 0; j < 3; j++) {
                    expect_as_fresh_in(f, formats[(k + j) % 3], events[i]);
                    expect_as_fresh_in(f, formats[k], events[(i + j + round) % count]);
                }
    /* the decisions themselves, each right after the NXLog event of the same keys */
    must_norm(f, EVENT_FORMAT_AUTO, events[3]);
    mamori_event evtx = must_norm(f, EVENT_FORMAT_AUTO, events[4]);
    assert_int(&evtx, "winlog.event_id", 4);
    must_norm(f, EVENT_FORMAT_WINLOG, events[1]);
    mamori_event ecs = must_norm(f, EVENT_FORMAT_AUTO, events[1]);
    assert_absent(&ecs, "winlog.event_id");
    must_norm(f, EVENT_FORMAT_AUTO, events[0]);
    mamori_event as_ecs = must_norm(f, EVENT_FORMAT_ECS, events[0]);
    assert_absent(&as_ecs, "winlog.event_id");
    mamori_event nx = must_norm(f, EVENT_FORMAT_AUTO, events[0]);
    assert_int(&nx, "winlog.event_id", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_value_dependent_decisions_with_one_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_that_differ_by_little, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_shapes, setup, teardown),
        cmocka_unit_test(test_sort_cache_collision),
        cmocka_unit_test_setup_teardown(test_numeric_system_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keywords_hex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_time_memo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shape_by_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
