/* Unit tests: core/clock.c — RFC 3339 parsing/formatting and day buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/clock.h"

static int64_t parse(const char *s)
{
    int64_t us = -1;
    assert_int_equal(clock_parse_rfc3339(s, strlen(s), &us), 0);
    return us;
}

static void test_parse_forms(void **state)
{
    (void)state;
    assert_true(parse("1970-01-01T00:00:00Z") == 0);
    assert_true(parse("2020-10-22T03:52:01.720Z") == 1603338721720000LL);
    assert_true(parse("2020-10-22 03:52:01.720") == 1603338721720000LL); /* Sysmon UtcTime */
    assert_true(parse("2020-10-22T03:52:01.7200000Z") == 1603338721720000LL); /* evtx 7 digits */
    assert_true(parse("2020-10-22T05:52:01.72+02:00") == 1603338721720000LL);
    assert_true(parse("2020-10-22T03:52:01.123456789Z") == 1603338721123456LL);
    assert_true(parse("2000-02-29T00:00:00Z") == 951782400000000LL);
    static const char *bad[] = {"", "2020-13-01T00:00:00Z", "2020-10-22T03:52", "2020-10-22T03:52:01.Z",
                                "2020-10-22T03:52:01Zjunk", "2020/10/22 03:52:01", "2020-10-22T03:52:01+0200",
                                "2020-10-22T24:00:00Z", "2020-10-22T03:52:01.1234567890Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us;
        if (clock_parse_rfc3339(bad[i], strlen(bad[i]), &us) == 0) fail_msg("accepted '%s'", bad[i]);
    }
}

static void test_format_round_trip(void **state)
{
    (void)state;
    char out[28];
    assert_int_equal(clock_format_rfc3339(1603338721720000LL, out), 27);
    assert_string_equal(out, "2020-10-22T03:52:01.720000Z");
    assert_true(parse(out) == 1603338721720000LL);
    clock_format_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000000Z");
}

static void test_days(void **state)
{
    (void)state;
    assert_int_equal(clock_day_of_us(0), 0);
    assert_int_equal(clock_day_of_us(86400LL * 1000000 - 1), 0);
    assert_int_equal(clock_day_of_us(86400LL * 1000000), 1);
    assert_int_equal(clock_day_of_us(-1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
