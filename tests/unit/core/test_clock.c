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

/* The memo parses exactly as clock_parse_rfc3339: each string right after every other one (a
 * cached prefix that matches, that differs in one byte, invalid after valid and back). */
static void test_parse_memo(void **state)
{
    (void)state;
    static const char *const forms[] = {
        "2020-10-22T03:52:01.720Z", "2020-10-22T03:52:01.721Z", "2020-10-22T03:52:01Z", "2020-10-22T03:52:01",
        "2020-10-22T03:52:01.7Z", "2020-10-22T03:52:01.123456789Z", "2020-10-22T03:52:01.1234567891Z",
        "2020-10-22T03:52:01.720+02:00", "2020-10-22T03:52:01.720-05:30", "2020-10-22T03:52:01+23:59",
        "2020-10-22T03:52:01.720+24:00", "2020-10-22T03:52:01.Z", "2020-10-22T03:52:01.720ZZ",
        "2020-10-22 03:52:01.720", "2020-10-22t03:52:01.720z", "2020-10-22T03:52:02.000Z", "2020-10-22T03:53:01.720Z",
        "2020-10-22T04:52:01.720Z", "2020-10-23T03:52:01.720Z", "2020-11-22T03:52:01.720Z", "2021-10-22T03:52:01.720Z",
        "2020-10-22T03:52:59.999999Z", "2020-10-22T03:59:59.999999Z", "2020-10-22T23:59:59.999999Z",
        "2020-10-31T23:59:59.999999Z", "2020-12-31T23:59:59.999999Z", "2021-01-01T00:00:00.000000Z",
        "2020-02-29T23:59:60.5Z", "2020-02-31T00:00:00Z", "2020-10-22T03:52:61Z", "2020-13-22T03:52:01Z",
        "2020-10-22T24:52:01Z", "2020-10-22X03:52:01Z", "2020-10-22T03:52:0", "2020-10-22T03:52:0x.720Z",
        "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
        "2020-10-22T03:52:01,5Z", "2020-10-22T03:52:01.720+02:0", "2020-10-22T03:52:01.720+0200", "",
    };
    const size_t count = sizeof forms / sizeof forms[0];
    clock_rfc3339_memo memo;
    memset(&memo, 0, sizeof memo);
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < count; j++) {
            const char *order[3] = {forms[i], forms[j], forms[i]};
            for (size_t k = 0; k < 3; k++) {
                const char *s = order[k];
                int64_t want = -7, got = -7;
                int rc_want = clock_parse_rfc3339(s, strlen(s), &want);
                int rc_got = clock_parse_rfc3339_memo(&memo, s, strlen(s), &got);
                if (rc_want != rc_got || (rc_want == 0 && want != got))
                    fail_msg("'%s' after '%s': memo %d/%lld, plain %d/%lld", s, k ? order[k - 1] : "-", rc_got,
                             (long long)got, rc_want, (long long)want);
            }
        }
    }
}

/* The memo formats exactly as clock_format_rfc3339, across second, minute, day, month and year
 * boundaries, negative times and the clamped years, in both directions. */
static void test_format_memo(void **state)
{
    (void)state;
    static const int64_t bases[] = {0, 1603338721720000LL, 1609459200000000LL /* 2021-01-01 */, 951782400000000LL /* 2000-02-29 */,
                                    -1, -86400LL * 1000000, -62167219200000000LL /* year 0 */, -62167219200000001LL,
                                    253402300799999999LL /* 9999-12-31T23:59:59.999999 */, 253402300800000000LL, INT64_MAX / 2};
    static const int64_t steps[] = {0, 1, -1, 999999, 1000000, -1000000, 59000000, 60000000, 3600000000LL, 86400000000LL,
                                    -86400000000LL, 2678400000000LL, 31536000000000LL};
    clock_rfc3339_memo memo;
    memset(&memo, 0, sizeof memo);
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            for (int64_t k = -2; k <= 2; k++) {
                int64_t us = bases[b] + steps[s] * k;
                char want[28], got[28];
                memset(got, 'x', sizeof got);
                assert_int_equal(clock_format_rfc3339(us, want), 27);
                assert_int_equal(clock_format_rfc3339_memo(&memo, us, got), 27);
                if (memcmp(want, got, 28) != 0) fail_msg("%lld: memo '%s', plain '%s'", (long long)us, got, want);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_days),
        cmocka_unit_test(test_parse_memo),
        cmocka_unit_test(test_format_memo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
