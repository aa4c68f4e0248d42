/* tests/unit/search/test_parser.c — the query language: every construct compiles, and
 * precedence and comparison semantics hold when the tree is evaluated on events; every
 * malformed query is refused with the byte offset of the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "search/internal.h"

static const char *EV_PS =
    "{\"@timestamp\":\"2024-03-01T00:00:01Z\",\"destination\":{\"ip\":\"10.1.2.3\",\"port\":4444},"
    "\"event\":{\"category\":[\"process\"],\"type\":[\"start\"]},\"host\":{\"id\":\"h1\",\"ip\":[\"10.0.0.5\",\"fe80::1\"]},"
    "\"process\":{\"command_line\":\"powershell.exe -nop -EncodedCommand SQBFAFgA\",\"name\":\"PowerShell.exe\","
    "\"pid\":4242,\"executable\":\"C:\\\\Windows\\\\System32\\\\WindowsPowerShell\\\\v1.0\\\\powershell.exe\"},"
    "\"user\":{\"name\":\"alice\"},\"winlog\":{\"event_data\":{\"Dotted.Name\":\"x\"}}}";

static bool eval_text(const char *query, const char *json)
{
    search_query *q = NULL;
    search_error err;
    int rc = search_compile(query, strlen(query), &q, &err);
    if (rc) fail_msg("compile '%s': %s", query, err.message);
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 4096);
    json_value root;
    json_error jerr;
    assert_int_equal(json_parse(p, &a, json, strlen(json), &root, &jerr), 0);
    eval_ctx e;
    eval_ctx_init(&e);
    bool r = eval_query(&e, &q->filter, &root);
    eval_ctx_fini(&e);
    arena_fini(&a);
    json_parser_destroy(p);
    search_query_destroy(q);
    return r;
}

static void test_constructs(void **state)
{
    (void)state;
    static const char *ok[] = {
        "process where process.name == \"cmd.exe\"",
        "any where true",
        "process where process.name : \"power*\" and not process.command_line : \"*-enc*\"",
        "network where destination.port in (80, 443, 8080)",
        "network where destination.ip in~ (\"10.0.0.1\", \"10.0.0.2\")",
        "process where process.name not in (\"a\", \"b\")",
        "process where process.name like~ \"p?wer*\" or process.name regex~ \"pow.*\"",
        "process where process.name like (\"a*\", \"b*\")",
        "network where cidrMatch(destination.ip, \"10.0.0.0/8\", \"192.168.0.0/16\")",
        "process where startsWith~(process.name, \"pow\") and endsWith(process.name, \".exe\")",
        "process where stringContains(process.command_line, \"enc\")",
        "process where process.pid >= 4 and process.pid < -1.5e3",
        "process where (a == 1 or b == 2) and not (c != null)",
        "process where `winlog.event_data.Dotted.Name` == \"x\"",
        "process where process.name == \"\"\"C:\\raw\"\"\"",
        "process where process.name == 'single'",
        "sequence by host.id with maxspan=5m [process where true] [network where true]",
        ("sequence with maxspan=30s by host.id [process where true] by process.entity_id [network where true] by "
         "process.entity_id until [process where event.type == \"end\"] by process.entity_id"),
        "sequence [process where true] [file where true] | head 5",
        "process where true | head 10",
        "process where true | tail 10",
        "process where true | count",
        "process where true | count by process.name, host.id",
        "sequence by host.id [process where true] [network where true] | count",
        "\"process\" where true",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        search_query *q = NULL;
        search_error err;
        int rc = search_compile(ok[i], strlen(ok[i]), &q, &err);
        if (rc) fail_msg("'%s' did not compile: %s", ok[i], err.message);
        search_query_destroy(q);
    }
}

static void test_semantics(void **state)
{
    (void)state;
    /* category */
    assert_true(eval_text("process where true", EV_PS));
    assert_true(eval_text("PROCESS where true", EV_PS)); /* caseless category */
    assert_false(eval_text("network where true", EV_PS));
    assert_true(eval_text("any where true", EV_PS));
    /* == is case-sensitive, : is caseless with wildcards */
    assert_false(eval_text("any where process.name == \"powershell.exe\"", EV_PS));
    assert_true(eval_text("any where process.name == \"PowerShell.exe\"", EV_PS));
    assert_true(eval_text("any where process.name : \"powershell.exe\"", EV_PS));
    assert_true(eval_text("any where process.command_line : \"*-encodedcommand*\"", EV_PS));
    assert_true(eval_text("any where process.name : (\"cmd.exe\", \"power*\")", EV_PS));
    assert_true(eval_text("any where process.name like~ \"p?wershell.*\"", EV_PS));
    assert_false(eval_text("any where process.name like \"p?wershell.*\"", EV_PS));
    assert_true(eval_text("any where process.name regex~ \"power[a-z]+\\\\.exe\"", EV_PS));
    assert_false(eval_text("any where process.name regex \"power\"", EV_PS)); /* anchored, case-sensitive */
    assert_true(eval_text("any where process.executable : \"C:\\\\Windows\\\\*\"", EV_PS));
    assert_true(eval_text("any where process.executable : \"\"\"c:\\windows\\*\"\"\"", EV_PS));
    /* in, not in */
    assert_true(eval_text("any where process.name in (\"x\", \"PowerShell.exe\")", EV_PS));
    assert_false(eval_text("any where process.name in (\"x\", \"powershell.exe\")", EV_PS));
    assert_true(eval_text("any where process.name in~ (\"x\", \"powershell.exe\")", EV_PS));
    assert_true(eval_text("any where process.name not in (\"x\", \"y\")", EV_PS));
    /* numbers */
    assert_true(eval_text("any where destination.port == 4444", EV_PS));
    assert_true(eval_text("any where destination.port == \"4444\"", EV_PS));
    assert_true(eval_text("any where destination.port > 1024 and destination.port <= 4444", EV_PS));
    assert_false(eval_text("any where destination.port < 4444", EV_PS));
    assert_true(eval_text("any where process.pid >= 4242.0", EV_PS));
    /* IPs and CIDR */
    assert_true(eval_text("any where cidrMatch(destination.ip, \"10.0.0.0/8\")", EV_PS));
    assert_false(eval_text("any where cidrMatch(destination.ip, \"10.1.3.0/24\")", EV_PS));
    assert_true(eval_text("any where cidrMatch(host.ip, \"fe80::/10\")", EV_PS));
    assert_true(eval_text("any where destination.ip > \"10.1.2.2\" and destination.ip < \"10.1.2.10\"", EV_PS));
    assert_true(eval_text("any where host.ip == \"fe80:0::1\"", EV_PS)); /* IP equality, any array element */
    /* arrays: any element */
    assert_true(eval_text("any where host.ip == \"10.0.0.5\"", EV_PS));
    assert_true(eval_text("any where event.type : \"start\"", EV_PS));
    /* missing fields are null */
    assert_true(eval_text("any where nothing.here == null", EV_PS));
    assert_false(eval_text("any where nothing.here == \"x\"", EV_PS));
    assert_true(eval_text("any where nothing.here != \"x\"", EV_PS));
    assert_true(eval_text("any where process.name != null", EV_PS));
    assert_false(eval_text("any where nothing.here > 3", EV_PS));
    /* precedence: and binds tighter than or; not tighter than and */
    assert_true(eval_text("any where user.name == \"bob\" and false or true", EV_PS));
    assert_false(eval_text("any where user.name == \"bob\" and (false or true)", EV_PS));
    assert_true(eval_text("any where not user.name == \"bob\" and user.name == \"alice\"", EV_PS));
    assert_false(eval_text("any where not (user.name == \"bob\" or user.name == \"alice\")", EV_PS));
    assert_true(eval_text("any where not not true", EV_PS));
    /* functions */
    assert_true(eval_text("any where startsWith~(process.name, \"power\")", EV_PS));
    assert_false(eval_text("any where startsWith(process.name, \"power\")", EV_PS));
    assert_true(eval_text("any where endsWith(process.name, \".exe\")", EV_PS));
    assert_true(eval_text("any where stringContains~(process.command_line, \"ENCODED\")", EV_PS));
    /* dotted member names and backquoted paths */
    assert_true(eval_text("any where `winlog.event_data.Dotted.Name` == \"x\"", EV_PS));
}

typedef struct bad_case {
    const char *query;
    int position;
} bad_case;

static void test_errors(void **state)
{
    (void)state;
    static const bad_case bad[] = {
        {"", 0},
        {"process", 7},
        {"process where", 13},
        {"process where process.name ==", 29},
        {"process where process.name = \"x\"", 27},
        {"process where process.name == \"x", 30},
        {"process where process.name == \"x\" and", 37},
        {"process where (process.name == \"x\"", 34},
        {"process where process.name == \"x\")", 33},
        {"process where process.name == \"x\" | head", 40},
        {"process where process.name == \"x\" | head 0", 41},
        {"process where process.name == \"x\" | frobnicate", 36},
        {"process where process.name ! \"x\"", 27},
        {"process where process.name in \"x\"", 30},
        {"process where process.name == (\"a\", \"b\")", 30},
        {"process where process.name regex \"(\"", 33},
        {"process where cidrMatch(destination.ip, \"10.0.0.0/33\")", 40},
        {"process where unknownFn(x, \"y\")", 14},
        {"process where x == \"\\q\"", 20},
        {"process where x == \"\\u12\"", 20},
        {"process where x == 12abc", 21},
        {"process where x == other.field", 19},
        {"process where x == #", 19},
        {"sequence [process where true]", 29},
        {"sequence with maxspan=5x [a where true] [b where true]", 23},
        {"sequence by host.id [a where true] by x [b where true]", 41},
        {"process where true | count | head 5", 29},
        {"process where true | head 5 | tail 5", 30},
        {"host.name where true", 0},
        {"process where true and", 22},
        {"where x == 1", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        search_query *q = NULL;
        search_error err;
        int rc = search_compile(bad[i].query, strlen(bad[i].query), &q, &err);
        if (rc == 0) fail_msg("'%s' compiled", bad[i].query);
        assert_int_equal(err.code, SEARCH_ERR_BAD_QUERY);
        if (err.position != bad[i].position)
            fail_msg("'%s': position %d, want %d (%s)", bad[i].query, err.position, bad[i].position, err.message);
        assert_non_null(strstr(err.message, "offset") ? err.message : (bad[i].query[0] ? NULL : err.message));
    }
}

static void test_limits(void **state)
{
    (void)state;
    char *q = malloc(SEARCH_MAX_QUERY_BYTES + 64);
    /* nesting */
    size_t n = 0;
    n += (size_t)sprintf(q + n, "any where ");
    for (int i = 0; i < 200; i++) q[n++] = '(';
    n += (size_t)sprintf(q + n, "true");
    for (int i = 0; i < 200; i++) q[n++] = ')';
    search_query *sq = NULL;
    search_error err;
    assert_int_not_equal(search_compile(q, n, &sq, &err), 0);
    assert_non_null(strstr(err.message, "nesting"));
    /* too long */
    memset(q, ' ', SEARCH_MAX_QUERY_BYTES + 1);
    assert_int_not_equal(search_compile(q, SEARCH_MAX_QUERY_BYTES + 1, &sq, &err), 0);
    /* too many values in a list */
    n = (size_t)sprintf(q, "any where a in (");
    for (int i = 0; i < 1100; i++) n += (size_t)sprintf(q + n, "%s%d", i ? "," : "", i);
    q[n++] = ')';
    assert_int_not_equal(search_compile(q, n, &sq, &err), 0);
    assert_non_null(strstr(err.message, "values in a list"));
    /* NUL byte */
    assert_int_not_equal(search_compile("any where a == 1\0", 17, &sq, &err), 0);
    assert_int_equal(err.position, 16);
    free(q);
}

static void test_wildcard(void **state)
{
    (void)state;
    assert_true(wildcard_match("*", 1, "", 0, false));
    assert_true(wildcard_match("a*b*c", 5, "axxbyyc", 7, false));
    assert_false(wildcard_match("a*b*c", 5, "axxbyy", 6, false));
    assert_true(wildcard_match("A?C", 3, "abc", 3, true));
    assert_false(wildcard_match("A?C", 3, "abc", 3, false));
    assert_true(wildcard_match("*-enc*", 6, "powershell -Enc xx", 18, true));
    assert_true(wildcard_match("**a", 3, "bba", 3, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constructs), cmocka_unit_test(test_semantics), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),     cmocka_unit_test(test_wildcard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
