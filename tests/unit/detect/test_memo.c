/* tests/unit/detect/test_memo.c — the scan memo (detect/memo.c) changes nothing but speed: a
 * worker that has seen thousands of events (values repeating, slots colliding, its record ring
 * wrapped several times) fires exactly the rules a fresh worker fires on every event; values
 * that differ only in their last byte, values at the memo's length limit and past it, and
 * scans Hyperscan reports at several offsets all come out right; and repeated values are
 * really answered by the memo. */
#include "helpers.h"

static const char *rules =
    "title: L\nid: L\nlogsource:\n    category: process_creation\n    product: windows\n"
    "detection:\n    sel:\n        CommandLine|contains:\n            - 'alpha'\n            - 'beta'\n"
    "    condition: sel\n---\n"
    "title: H\nid: H\nlogsource:\n    category: process_creation\n    product: windows\n"
    "detection:\n    sel:\n        CommandLine|contains|all:\n            - 'gam*ma'\n            - 'delta'\n"
    "    condition: sel\n---\n"
    "title: R\nid: R\nlogsource:\n    category: process_creation\n    product: windows\n"
    "detection:\n    sel:\n        CommandLine|re: 'x[0-9]{3}y'\n    condition: sel\n---\n"
    "title: I\nid: I\nlogsource:\n    category: process_creation\n    product: windows\n"
    "detection:\n    sel:\n        Image|endswith:\n            - '\\a.exe'\n            - '\\bb.exe'\n"
    "            - '\\ccc.exe'\n            - '\\dddd.exe'\n    start:\n        Image|startswith:\n"
    "            - 'C:\\x'\n            - 'D:\\yy'\n    condition: sel or start\n---\n"
    "title: E\nid: E\nlogsource:\n    category: process_creation\n    product: windows\n"
    "detection:\n    sel:\n        CommandLine|endswith: 'z'\n    filter:\n        CommandLine|contains: 'alpha'\n"
    "    condition: sel and not filter\n---\n"
    "title: K\nid: K\nlogsource:\n    product: windows\ndetection:\n    keywords:\n        - 'kwalpha'\n"
    "    condition: keywords\n";

#define RULES 6

/* A Sysmon process creation with this command line and image (JSON-escaped by the caller). */
static void event_json(char *out, size_t cap, const char *cmd, const char *image)
{
    snprintf(out, cap,
             "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"
             "\"Computer\":\"ws1\"},\"EventData\":{\"CommandLine\":\"%s\",\"Image\":\"%s\"}}}",
             cmd, image);
}

/* Bit per rule (in the order above) that fired. */
static unsigned fired(harness *h, const char *json)
{
    const char *ids[RULES];
    size_t n = harness_eval(h, json, ids, RULES);
    unsigned bits = 0;
    static const char order[] = "LHRIEK";
    for (size_t i = 0; i < n; i++) bits |= 1u << (strchr(order, ids[i][0]) - order);
    return bits;
}

/* The same event through a worker that has seen nothing: a new one, bound now. */
static unsigned fired_fresh(harness *h, const char *json)
{
    detect_worker *keep = h->worker;
    h->worker = detect_worker_create();
    assert_int_equal(detect_worker_bind(h->worker, h->rs), 0);
    unsigned bits = fired(h, json);
    detect_worker_destroy(h->worker);
    h->worker = keep;
    return bits;
}

/* Command line number i of a vocabulary built to repeat (i modulo a few hundred), to hit each
 * rule kind, and to differ from its neighbours in the last byte only. */
static void command_line(char *out, size_t cap, unsigned i)
{
    static const char *stems[] = {"run alpha ", "gamXXma then delta ", "x123y ", "plain ", "be", "tail z ",
                                  "alpha z ", "gamma delt ", "x12y "};
    unsigned stem = i % 9, n = (i / 9) % 13; /* 468 distinct lines */
    snprintf(out, cap, "%s%u%c", stems[stem], n, "abcz"[i % 4]);
}

static void test_memo_equals_fresh_worker(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, rules);
    harness_expect_loaded(&h, RULES);
    static const char *images[] = {"C:\\\\Windows\\\\a.exe", "C:\\\\Windows\\\\bb.exe", "D:\\\\yy\\\\ccc.exe",
                                   "C:\\\\xx\\\\q.exe",     "E:\\\\dddd.exe",          "E:\\\\ddd.exe",
                                   "C:\\\\kwalpha.exe"};
    char cmd[256], json[1024];
    unsigned seen = 0;
    for (unsigned i = 0; i < 6000; i++) {
        command_line(cmd, sizeof cmd, i);
        event_json(json, sizeof json, cmd, images[(i / 7) % 7]);
        unsigned got = fired(&h, json);
        seen |= got;
        if (i % 3 == 0) assert_int_equal(got, fired_fresh(&h, json)); /* every third: fresh workers are costly */
    }
    assert_int_equal(seen, (1u << RULES) - 1); /* every rule fired somewhere */
    detect_worker_stats st;
    detect_worker_stats_get(h.worker, &st);
    assert_true(st.memo_hits > st.scans / 4); /* the repeats were answered by the memo */
    harness_fini(&h);
}

/* Known answers on values that differ only in their last byte, at the length limit and past it. */
static void test_memo_exact_on_near_values(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, rules);
    char cmd[2048], json[4096];
    for (int round = 0; round < 3; round++) { /* the second and third rounds replay from the memo */
        for (size_t len = 500; len <= 530; len++) {
            memset(cmd, 'q', len);
            memcpy(cmd + len - 5, "alpha", 5); /* L fires, E does not (not ending with z) */
            cmd[len] = '\0';
            event_json(json, sizeof json, cmd, "C:\\\\n.exe");
            assert_int_equal(fired(&h, json), 1u << 0);
            cmd[len - 1] = 'z'; /* "alphz": no L; E fires (ends with z, no alpha) */
            event_json(json, sizeof json, cmd, "C:\\\\n.exe");
            assert_int_equal(fired(&h, json), 1u << 4);
            memcpy(cmd + len - 5, "x123y", 5); /* R only */
            event_json(json, sizeof json, cmd, "C:\\\\n.exe");
            assert_int_equal(fired(&h, json), 1u << 2);
        }
    }
    harness_fini(&h);
}

/* Far more distinct values than the memo's ring holds: records are overwritten again and
 * again, and values seen long ago come back with the right answer. */
static void test_memo_ring_wraps(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, rules);
    char cmd[600], json[1024];
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < 20000; i++) { /* ~9.6 MB of distinct 480-byte values */
            memset(cmd, 'w', 480);
            int n = snprintf(cmd, sizeof cmd, "%s%u ", i % 2 ? "beta " : "b-ta ", i);
            cmd[n] = 'w';
            cmd[480] = '\0';
            event_json(json, sizeof json, cmd, "C:\\\\n.exe");
            assert_int_equal(fired(&h, json), i % 2 ? 1u : 0u);
        }
    }
    harness_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memo_equals_fresh_worker),
        cmocka_unit_test(test_memo_exact_on_near_values),
        cmocka_unit_test(test_memo_ring_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
