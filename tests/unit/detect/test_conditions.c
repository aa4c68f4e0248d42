/* tests/unit/detect/test_conditions.c — the condition grammar: precedence (or < and < not
 * < x of < parentheses), `1 of`/`all of` patterns and `them` (skipping `_` identifiers),
 * lists of conditions, nesting, and the errors (unknown identifier, syntax, deprecated
 * aggregation) with their lines. Identifiers a..d test fields A..D for the value "x". */
#include "helpers.h"

#define IDS                                                                                                          \
    "    a:\n        A: x\n    b:\n        B: x\n    c:\n        C: x\n    d:\n        D: x\n"

/* Event data with the given fields set to "x" (e.g. "AC"). */
static bool fires(const char *condition, const char *set)
{
    char det[1024], data[256] = "\"Other\":\"y\"";
    snprintf(det, sizeof det, IDS "    condition: %s\n", condition);
    for (const char *p = set; *p; p++) {
        size_t n = strlen(data);
        snprintf(data + n, sizeof data - n, ",\"%c\":\"x\"", *p);
    }
    return sysmon1_fires(det, data);
}

static void test_precedence(void **state)
{
    (void)state;
    /* a or (b and c) */
    assert_true(fires("a or b and c", "A"));
    assert_false(fires("a or b and c", "B"));
    assert_true(fires("a or b and c", "BC"));
    /* (not a) and b */
    assert_true(fires("not a and b", "B"));
    assert_false(fires("not a and b", "AB"));
    assert_false(fires("not a and b", ""));
    /* not binds tighter than or */
    assert_true(fires("not a or b", ""));
    assert_true(fires("not a or b", "AB"));
    assert_false(fires("not a or b", "A"));
    /* parentheses override */
    assert_false(fires("(a or b) and c", "A"));
    assert_true(fires("(a or b) and c", "BC"));
    assert_true(fires("not (a or b)", "C"));
    assert_false(fires("not (a or b)", "B"));
    assert_true(fires("not not a", "A"));
    /* left to right chains */
    assert_true(fires("a and b and c and d", "ABCD"));
    assert_false(fires("a and b and c and d", "ABC"));
    assert_true(fires("a or b or c or d", "D"));
}

static void test_nesting(void **state)
{
    (void)state;
    assert_true(fires("(a or (b and (c or d)))", "BD"));
    assert_false(fires("(a or (b and (c or d)))", "B"));
    assert_true(fires("((((a))))", "A"));
    assert_true(fires("not ((a and b) or (c and not d))", "AC" "D"));
    assert_false(fires("not ((a and b) or (c and not d))", "C"));
}

static void test_keywords_case(void **state)
{
    (void)state;
    assert_true(fires("a AND b", "AB"));
    assert_true(fires("NOT a Or b", ""));
    assert_true(fires("1 OF them", "C"));
    assert_true(fires("ALL of them", "ABCD"));
}

static bool fires_with(const char *identifiers, const char *condition, const char *data)
{
    char det[2048];
    snprintf(det, sizeof det, "%s    condition: %s\n", identifiers, condition);
    return sysmon1_fires(det, data);
}

static void test_x_of(void **state)
{
    (void)state;
    const char *ids = "    selection_img:\n        Image: x\n    selection_cli:\n        CommandLine: x\n"
                      "    filter_a:\n        User: bob\n    filter_b:\n        User: alice\n";
    assert_true(fires_with(ids, "1 of selection_*", "\"Image\":\"x\""));
    assert_false(fires_with(ids, "all of selection_*", "\"Image\":\"x\""));
    assert_true(fires_with(ids, "all of selection_*", "\"Image\":\"x\",\"CommandLine\":\"x\""));
    assert_true(fires_with(ids, "any of selection_*", "\"CommandLine\":\"x\""));
    assert_true(fires_with(ids, "1 of selection_* and not 1 of filter_*", "\"Image\":\"x\",\"User\":\"carol\""));
    assert_false(fires_with(ids, "1 of selection_* and not 1 of filter_*", "\"Image\":\"x\",\"User\":\"alice\""));
    /* `*` anywhere in the pattern */
    assert_true(fires_with(ids, "1 of *_cli", "\"CommandLine\":\"x\""));
    assert_true(fires_with(ids, "1 of sel*img", "\"Image\":\"x\""));
    /* a pattern is a full match: "filter" alone selects none of the filter_* identifiers */
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "title: t\nlogsource:\n    product: windows\ndetection:\n%s    condition: selection_img and not 1 of filter\n",
             ids);
    harness h;
    const detect_problem *p = expect_one_problem(&h, yaml);
    assert_non_null(strstr(p->message, "'1 of filter' selects no search identifier"));
    problem_fini(&h);
}

static void test_them_skips_underscore(void **state)
{
    (void)state;
    const char *ids = "    sel1:\n        Image: x\n    sel2:\n        CommandLine: x\n    _hidden:\n        User: never\n";
    /* _hidden would be false: all of them still holds */
    assert_true(fires_with(ids, "all of them", "\"Image\":\"x\",\"CommandLine\":\"x\""));
    assert_false(fires_with(ids, "1 of them", "\"User\":\"never\""));
    /* naming it, or a pattern that starts with _, reaches it */
    assert_true(fires_with(ids, "_hidden", "\"User\":\"never\""));
    assert_true(fires_with(ids, "1 of _hid*", "\"User\":\"never\""));
    /* patterns other than `them` skip _ names too */
    assert_true(fires_with(ids, "all of *", "\"Image\":\"x\",\"CommandLine\":\"x\""));
}

static void test_condition_list(void **state)
{
    (void)state;
    const char *det = IDS "    condition:\n        - a and b\n        - c\n";
    assert_true(sysmon1_fires(det, "\"C\":\"x\""));
    assert_true(sysmon1_fires(det, "\"A\":\"x\",\"B\":\"x\""));
    assert_false(sysmon1_fires(det, "\"A\":\"x\""));
}

static void test_identifier_names(void **state)
{
    (void)state;
    const char *ids = "    sel-1:\n        Image: x\n    2nd_sel:\n        CommandLine: x\n";
    assert_true(fires_with(ids, "sel-1 and 2nd_sel", "\"Image\":\"x\",\"CommandLine\":\"x\""));
}


static const detect_problem *bad_condition(harness *h, const char *condition)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "title: t\nlogsource:\n    product: windows\ndetection:\n    a:\n        A: x\n    condition: %s\n", condition);
    return expect_one_problem(h, yaml);
}

static void test_selector_selecting_nothing(void **state)
{
    (void)state;
    /* no filter_* identifier: the rule is rejected (pySigma 2.x), naming the selector —
     * neither dropped (which turns `a or not 1 of filter_*` into `a`) nor false */
    harness h;
    const char *conds[] = {"a and not 1 of filter_*", "a or all of nothing_*", "1 of them and 1 of x*"};
    const char *names[] = {"'1 of filter_*'", "'all of nothing_*'", "'1 of x*'"};
    for (size_t i = 0; i < 3; i++) {
        const detect_problem *p = bad_condition(&h, conds[i]);
        assert_int_equal(p->reason, DETECT_REASON_CONDITION);
        assert_non_null(strstr(p->message, names[i]));
        assert_non_null(strstr(p->message, "selects no search identifier"));
        problem_fini(&h);
    }
    /* `them` skips _-prefixed identifiers: with only those, it selects nothing */
    const detect_problem *p = expect_one_problem(
        &h, "title: t\nlogsource:\n    product: windows\ndetection:\n    _a:\n        A: x\n    condition: 1 of them\n");
    assert_non_null(strstr(p->message, "'1 of them' selects no search identifier"));
    problem_fini(&h);
}

static void test_errors(void **state)
{
    (void)state;
    harness h;
    const detect_problem *p = bad_condition(&h, "a and missing");
    assert_int_equal(p->reason, DETECT_REASON_CONDITION);
    assert_int_equal(p->line, 7);
    assert_non_null(strstr(p->message, "missing"));
    problem_fini(&h);
    p = bad_condition(&h, "(a");
    assert_int_equal(p->reason, DETECT_REASON_CONDITION);
    problem_fini(&h);
    p = bad_condition(&h, "a and");
    assert_int_equal(p->reason, DETECT_REASON_CONDITION);
    problem_fini(&h);
    p = bad_condition(&h, "a b");
    assert_int_equal(p->reason, DETECT_REASON_CONDITION);
    problem_fini(&h);
    p = bad_condition(&h, "a*");
    assert_int_equal(p->reason, DETECT_REASON_CONDITION);
    problem_fini(&h);
    p = bad_condition(&h, "a | count() > 5");
    assert_int_equal(p->reason, DETECT_REASON_AGGREGATION);
    problem_fini(&h);
    p = bad_condition(&h, "1 of nothing*");
    assert_int_equal(p->reason, DETECT_REASON_CONDITION);
    problem_fini(&h);
    /* deep nesting is bounded, not a stack overflow */
    char deep[512];
    memset(deep, '(', 100);
    deep[100] = 'a';
    memset(deep + 101, ')', 100);
    deep[201] = '\0';
    p = bad_condition(&h, deep);
    assert_int_equal(p->reason, DETECT_REASON_LIMIT);
    problem_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),     cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_keywords_case),  cmocka_unit_test(test_x_of),
        cmocka_unit_test(test_them_skips_underscore), cmocka_unit_test(test_condition_list),
        cmocka_unit_test(test_identifier_names), cmocka_unit_test(test_selector_selecting_nothing),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
