/* Unit tests: core/frame.c — header round trip and every malformed case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "core/frame.h"

static void encode(uint8_t out[FRAME_HEADER_BYTES], uint32_t len, uint8_t type, uint8_t flags, uint16_t reserved,
                   uint64_t seq)
{
    frame_header h = {len, type, flags, reserved, seq};
    frame_header_encode(&h, out);
}

static void test_round_trip_big_endian(void **state)
{
    (void)state;
    uint8_t b[FRAME_HEADER_BYTES];
    encode(b, 0x01020304, FRAME_EVENTS, FRAME_FLAG_ZSTD | (FRAME_FORMAT_AUTO << FRAME_FLAG_FORMAT_SHIFT), 0,
           0x1122334455667788ULL);
    const uint8_t want[] = {1, 2, 3, 4, 3, 0x05, 0, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    assert_memory_equal(b, want, sizeof want);
    frame_header h;
    const char *reason = NULL;
    assert_int_equal(frame_header_decode(b, UINT32_MAX, &h, &reason), 0);
    assert_int_equal(h.length, 0x01020304);
    assert_int_equal(h.type, FRAME_EVENTS);
    assert_int_equal(h.flags, 0x05);
    assert_true(h.seq == 0x1122334455667788ULL);
}

static void expect_violation(uint32_t len, uint8_t type, uint8_t flags, uint16_t reserved, uint32_t max,
                             const char *want_reason)
{
    uint8_t b[FRAME_HEADER_BYTES];
    encode(b, len, type, flags, reserved, 1);
    frame_header h;
    const char *reason = NULL;
    assert_int_equal(frame_header_decode(b, max, &h, &reason), -EPROTO);
    assert_string_equal(reason, want_reason);
}

static void test_malformed_headers(void **state)
{
    (void)state;
    expect_violation(0, 0, 0, 0, 1024, "unknown frame type");
    expect_violation(0, FRAME_TYPE_MAX + 1, 0, 0, 1024, "unknown frame type");
    expect_violation(0, 255, 0, 0, 1024, "unknown frame type");
    expect_violation(0, FRAME_HELLO, 0, 1, 1024, "reserved header field not zero");
    expect_violation(0, FRAME_HELLO, FRAME_FLAG_ZSTD, 0, 1024, "flags not allowed for frame type");
    expect_violation(0, FRAME_ACK, 0x80, 0, 1024, "flags not allowed for frame type");
    expect_violation(0, FRAME_EVENTS, 0x08, 0, 1024, "flags not allowed for frame type");
    expect_violation(0, FRAME_EVENTS, 3u << FRAME_FLAG_FORMAT_SHIFT, 0, 1024, "reserved event format");
    expect_violation(1025, FRAME_EVENTS, 0, 0, 1024, "frame length over maximum");
    expect_violation(UINT32_MAX, FRAME_PING, 0, 0, FRAME_DEFAULT_MAX_PAYLOAD, "frame length over maximum");
}

static void test_peek_partial_and_whole(void **state)
{
    (void)state;
    uint8_t b[FRAME_HEADER_BYTES + 5];
    encode(b, 5, FRAME_PING, 0, 0, 7);
    memcpy(b + FRAME_HEADER_BYTES, "hello", 5);
    frame_header h;
    const char *reason;
    for (size_t n = 0; n < sizeof b; n++) assert_int_equal(frame_peek(b, n, 1024, &h, &reason), 0);
    assert_int_equal(frame_peek(b, sizeof b, 1024, &h, &reason), 1);
    assert_int_equal(h.length, 5);
    /* an invalid header is reported as soon as the header is there, before any payload */
    encode(b, 1u << 30, FRAME_EVENTS, 0, 0, 1);
    assert_int_equal(frame_peek(b, FRAME_HEADER_BYTES, 1024, &h, &reason), -EPROTO);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(frame_type_name(FRAME_HELLO), "HELLO");
    assert_string_equal(frame_type_name(FRAME_CLOSE), "CLOSE");
    assert_string_equal(frame_type_name(42), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_big_endian),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_peek_partial_and_whole),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
