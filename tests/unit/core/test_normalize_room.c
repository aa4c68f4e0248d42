/* tests/unit/core/test_normalize_room.c — the normalizer built with 2 entries of room beyond
 * EVENT_MAX_FIELDS (tests/CMakeLists.txt compiles core/normalize*.c into this test with
 * NORM_ENTRY_ROOM=2; see ENTRY_CAP in core/normalize_internal.h). What the normalizer adds to
 * a large event (stamps, System fields, enrichment) then does not fit: the event must be
 * rejected as having too many fields — before, the push asserted and the process aborted —
 * and the next event must come out as if nothing had happened. */
#include "normalize_fixture.h"

#include "core/buf.h"

#if !defined(NORM_ENTRY_ROOM) || NORM_ENTRY_ROOM != 2
#error "built by tests/CMakeLists.txt with NORM_ENTRY_ROOM=2"
#endif

/* An ECS event of `count` integer fields f0..f(count-1). */
static const char *ecs_fields(buf *b, int count)
{
    buf_clear(b);
    buf_putc(b, '{');
    for (int i = 0; i < count; i++) buf_printf(b, "%s\"f%d\":%d", i ? "," : "", i, i);
    buf_putc(b, '}');
    return buf_cstr(b);
}

/* An NXLog Sysmon process-creation event with `extra` more EventData-like members x0.. */
static const char *nxlog_fields(buf *b, int extra)
{
    buf_clear(b);
    buf_puts(b, "{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"SourceName\":"
                "\"Microsoft-Windows-Sysmon\",\"Hostname\":\"ws1.example.test\",\"RecordNumber\":9001,"
                "\"UtcTime\":\"2024-03-04 05:06:59.990\",\"Image\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\","
                "\"Hashes\":\"MD5=00112233445566778899AABBCCDDEEFF,SHA256=00112233445566778899AABBCCDDEEFF"
                "00112233445566778899AABBCCDDEEFF\",\"ParentImage\":\"C:\\\\Windows\\\\explorer.exe\"");
    for (int i = 0; i < extra; i++) buf_printf(b, ",\"x%d\":\"v\"", i);
    buf_putc(b, '}');
    return buf_cstr(b);
}

static void test_ecs_additions_beyond_the_room_reject(void **state)
{
    struct fixture *f = *state;
    buf b;
    buf_init(&b);
    /* 1023 fields + mamori.* ×3 + host.id = 1027 entries > ENTRY_CAP (1026): the last push
     * lands in the spare entry and the event is rejected */
    for (int round = 0; round < 3; round++) {
        expect_reject(f, EVENT_FORMAT_ECS, ecs_fields(&b, EVENT_MAX_FIELDS - 1), "too many fields");
        expect_reject(f, EVENT_FORMAT_ECS, ecs_fields(&b, EVENT_MAX_FIELDS), "too many fields");
        /* exactly EVENT_MAX_FIELDS with the stamps: accepted, every field there */
        mamori_event ev = must_norm(f, EVENT_FORMAT_ECS, ecs_fields(&b, EVENT_MAX_FIELDS - 4));
        assert_int_equal(ev.field_count, EVENT_MAX_FIELDS);
        assert_int(&ev, "f0", 0);
        assert_int(&ev, "f1019", 1019);
        assert_str(&ev, "mamori.tenant", "acme");
        assert_str(&ev, "host.id", "agent-7");
        /* a small event after a rejection: nothing of the full one is left */
        ev = must_norm(f, EVENT_FORMAT_ECS, "{\"x\":1}");
        assert_int_equal(ev.field_count, 5);
        assert_string_equal(ev.json, "{\"host\":{\"id\":\"agent-7\"},\"mamori\":{\"agent_id\":\"agent-7\","
                                     "\"received\":\"2024-05-01T12:34:56.000000Z\",\"tenant\":\"acme\"},\"x\":1}");
        arena_reset(&f->arena);
    }
    buf_fini(&b);
}

static void test_winlog_additions_beyond_the_room_reject(void **state)
{
    struct fixture *f = *state;
    buf b;
    buf_init(&b);
    /* A Sysmon event at the input limit: System fields, event.*, hashes and enrichment
     * overflow the room of 2. Rejected, in both winlog readings, again and again. */
    for (int round = 0; round < 3; round++) {
        expect_reject(f, EVENT_FORMAT_AUTO, nxlog_fields(&b, EVENT_MAX_FIELDS - 12), "too many fields");
        expect_reject(f, EVENT_FORMAT_WINLOG, nxlog_fields(&b, EVENT_MAX_FIELDS - 12), "too many fields");
        /* the same event with few extra members: normalized, mapped and enriched */
        mamori_event ev = must_norm(f, EVENT_FORMAT_AUTO, nxlog_fields(&b, 3));
        assert_str(&ev, "process.executable", "C:\\Windows\\System32\\cmd.exe");
        assert_str(&ev, "process.name", "cmd.exe");
        assert_str(&ev, "process.parent.executable", "C:\\Windows\\explorer.exe");
        assert_str(&ev, "process.hash.md5", "00112233445566778899aabbccddeeff");
        assert_str(&ev, "winlog.event_data.x2", "v");
        assert_int(&ev, "winlog.event_id", 1);
        arena_reset(&f->arena);
    }
    buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ecs_additions_beyond_the_room_reject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_winlog_additions_beyond_the_room_reject, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
