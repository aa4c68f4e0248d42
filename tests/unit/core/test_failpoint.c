/* Unit tests: core/failpoint.c — disarmed by default, armed by name only, re-armed from
 * scratch, counted points fail their first N times, malformed specs (empty items, over-long
 * names, bad counts) skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/failpoint.h"

static void test_disarmed_by_default(void **state)
{
    (void)state;
    assert_false(failpoint("detect.recover.write"));
    assert_false(failpoint(""));
}

static void test_armed_by_name(void **state)
{
    (void)state;
    assert_int_equal(failpoints_arm("detect.recover.write,store.put"), 2);
    assert_true(failpoint("detect.recover.write"));
    assert_true(failpoint("store.put"));
    assert_false(failpoint("detect.recover"));       /* a prefix is another name */
    assert_false(failpoint("detect.recover.write2")); /* and so is a longer one */
    /* arming again replaces the set; nothing disarms everything */
    assert_int_equal(failpoints_arm("store.put"), 1);
    assert_false(failpoint("detect.recover.write"));
    assert_int_equal(failpoints_arm(NULL), 0);
    assert_false(failpoint("store.put"));
    assert_int_equal(failpoints_arm(""), 0);
    assert_false(failpoint(""));
}

static void test_malformed_items_skipped(void **state)
{
    (void)state;
    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char spec[200];
    snprintf(spec, sizeof spec, ",,a,%s,b,", longname);
    assert_int_equal(failpoints_arm(spec), 2);
    assert_true(failpoint("a"));
    assert_true(failpoint("b"));
    assert_false(failpoint(longname));
    assert_false(failpoint(""));
    assert_int_equal(failpoints_arm(NULL), 0);
}

static void test_counted(void **state)
{
    (void)state;
    assert_int_equal(failpoints_arm("detect.commit=3,other"), 2);
    for (int i = 0; i < 3; i++) assert_true(failpoint("detect.commit"));
    for (int i = 0; i < 5; i++) assert_false(failpoint("detect.commit"));
    assert_true(failpoint("other")); /* uncounted: every time */
    assert_true(failpoint("other"));
    /* bad counts: the item is skipped */
    assert_int_equal(failpoints_arm("a=0,b=-2,c=,d=3x,e=1"), 1);
    assert_false(failpoint("a"));
    assert_false(failpoint("b"));
    assert_false(failpoint("c"));
    assert_false(failpoint("d"));
    assert_true(failpoint("e"));
    assert_false(failpoint("e"));
    assert_int_equal(failpoints_arm(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disarmed_by_default),
        cmocka_unit_test(test_armed_by_name),
        cmocka_unit_test(test_malformed_items_skipped),
        cmocka_unit_test(test_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
