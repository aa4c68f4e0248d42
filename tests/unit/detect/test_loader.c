/* tests/unit/detect/test_loader.c — the rule loader: multi-document files, rejections with
 * file, line and reason while the other rules load, counts by reason, status skips,
 * correlation documents (skipped under their own reason), duplicate ids, Sigma 1.x
 * collections, rule metadata (tags, ATT&CK ids, level, x-mamori), Sigma filters, and
 * loading directories from disk. */
#include "helpers.h"

#include <sys/stat.h>
#include <unistd.h>

#define RULE(id, extra)                                                                                              \
    "title: rule " id "\nid: " id "\n" extra "logsource:\n    category: process_creation\n    product: windows\n"      \
    "detection:\n    sel:\n        Image|endswith: '\\" id ".exe'\n    condition: sel\n"

static const char *event_for(const char *name, char *out, size_t len)
{
    snprintf(out, len,
             "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
             "\"EventData\":{\"Image\":\"C:\\\\%s.exe\",\"User\":\"bob\"}}}",
             name);
    return out;
}

static void test_multi_document_and_problems(void **state)
{
    (void)state;
    const char *yaml = RULE("r1", "") "---\n" RULE("r2", "status: deprecated\n") "---\n"
        "title: broken\nid: r3\nlogsource:\n    product: windows\ndetection:\n    sel:\n        Image|nope: x\n"
        "    condition: sel\n"
        "---\n"
        "title: corr\nid: c1\ncorrelation:\n    type: event_count\n    rules: [r1]\n    group-by: [User]\n"
        "    timespan: 5m\n    condition:\n        gte: 10\n"
        "---\n" RULE("r4", "status: unsupported\n") "---\n" RULE("r1", "") "---\n"
        "title: old\naction: global\n";
    harness h;
    harness_init(&h, yaml);
    const detect_report *r = harness_report(&h);
    assert_int_equal(r->files, 1);
    assert_int_equal(r->documents, 7);
    assert_int_equal(r->loaded, 1);
    assert_int_equal(r->rejected, 3);
    assert_int_equal(r->skipped, 3);
    assert_int_equal(r->by_reason[DETECT_REASON_SKIP_DEPRECATED], 1);
    assert_int_equal(r->by_reason[DETECT_REASON_SKIP_UNSUPPORTED], 1);
    assert_int_equal(r->by_reason[DETECT_REASON_SKIP_CORRELATION], 1);
    assert_int_equal(r->by_reason[DETECT_REASON_UNKNOWN_MODIFIER], 1);
    assert_int_equal(r->by_reason[DETECT_REASON_DUPLICATE_ID], 1);
    assert_int_equal(r->by_reason[DETECT_REASON_COLLECTION], 1);
    /* every problem names file and line */
    bool seen_modifier = false;
    for (size_t i = 0; i < r->problem_count; i++) {
        assert_string_equal(r->problems[i].file, "test.yml");
        assert_true(r->problems[i].line > 0);
        if (r->problems[i].reason == DETECT_REASON_UNKNOWN_MODIFIER) {
            assert_int_equal(r->problems[i].line, 28);
            assert_string_equal(r->problems[i].rule_id, "r3");
            assert_string_equal(r->problems[i].title, "broken");
            seen_modifier = true;
        }
        if (r->problems[i].reason == DETECT_REASON_SKIP_CORRELATION)
            assert_string_equal(r->problems[i].message, "correlation rules not supported yet");
    }
    assert_true(seen_modifier);
    char ev[512];
    assert_true(harness_fires(&h, event_for("r1", ev, sizeof ev)));
    assert_false(harness_fires(&h, event_for("r2", ev, sizeof ev)));
    harness_fini(&h);

    /* asked for, deprecated and unsupported rules load */
    detect_options opt;
    detect_options_default(&opt);
    opt.include_deprecated = opt.include_unsupported = true;
    harness_init_opt(&h, RULE("r2", "status: deprecated\n") "---\n" RULE("r4", "status: unsupported\n"), &opt);
    harness_expect_loaded(&h, 2);
    assert_true(harness_fires(&h, event_for("r2", ev, sizeof ev)));
    harness_fini(&h);
}

static void test_structural_rejections(void **state)
{
    (void)state;
    struct {
        const char *yaml;
        enum detect_reason reason;
        uint32_t line;
    } cases[] = {
        {"title: x\nlogsource: [a\n", DETECT_REASON_YAML, 0},
        {"- just\n- a list\n", DETECT_REASON_NOT_A_RULE, 1},
        {"logsource:\n    product: windows\ndetection:\n    a:\n        A: 1\n    condition: a\n", DETECT_REASON_NOT_A_RULE, 0},
        {"title: x\nlogsource:\n    product: windows\n", DETECT_REASON_NOT_A_RULE, 0},
        {"title: x\ndetection:\n    a:\n        A: 1\n    condition: a\n", DETECT_REASON_NOT_A_RULE, 0},
        {"title: x\nlogsource:\n    product: windows\ndetection:\n    a:\n        A: 1\n", DETECT_REASON_DETECTION, 0},
        {"title: x\nlogsource:\n    product: windows\ndetection:\n    a:\n        A:\n            B: 1\n    condition: a\n",
         DETECT_REASON_DETECTION, 6},
        {"title: x\nlogsource:\n    product: windows\ndetection:\n    a: []\n    condition: a\n", DETECT_REASON_DETECTION, 0},
        {"title: x\ntags: notalist\nlogsource:\n    product: windows\ndetection:\n    a:\n        A: 1\n    condition: a\n",
         DETECT_REASON_ATTRIBUTE, 2},
        {"title: [x]\nlogsource:\n    product: windows\n", DETECT_REASON_ATTRIBUTE, 1},
        {"title: x\nlogsource:\n    product: windows\ndetection:\n    keywords:\n        - null\n    condition: keywords\n",
         DETECT_REASON_DETECTION, 0},
        /* not UTF-8: rejected before the YAML parser (libfyaml 0.7 loops forever on "%\xbd") */
        {"%\xbd", DETECT_REASON_YAML, 1},
        {"title: ok\ndescription: caf\xe9\n", DETECT_REASON_YAML, 2},
        /* control characters are not YAML (libfyaml 0.7 leaks on them in scalars) */
        {"title: ok\ndetection:\n    k:\n      - a\x02" "b\n", DETECT_REASON_YAML, 4},
        {"title: ok\x7f\n", DETECT_REASON_YAML, 1},
    };
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(cases); i++) {
        harness h;
        const detect_problem *p = expect_one_problem(&h, cases[i].yaml);
        if (p->reason != cases[i].reason) fprintf(stderr, "case %zu: %s\n", i, p->message);
        assert_int_equal(p->reason, cases[i].reason);
        if (cases[i].line) assert_int_equal(p->line, cases[i].line);
        assert_true(strlen(p->message) > 0);
        problem_fini(&h);
    }
}

static void test_metadata(void **state)
{
    (void)state;
    const char *yaml = "title: Meta\nid: 11111111-2222-3333-4444-555555555555\nname: meta_rule\nstatus: test\n"
                       "description: d\nlevel: high\ntags:\n    - attack.execution\n    - attack.t1059.001\n"
                       "    - attack.t1105\n    - attack.g0016\n    - car.2016-03-001\n"
                       "x-mamori:\n    response: [isolate, kill_process]\n    notify: true\n    weight: 3\n"
                       "logsource:\n    category: process_creation\n    product: windows\n"
                       "detection:\n    sel:\n        Image|endswith: '\\meta.exe'\n    condition: sel\n";
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 1);
    const detect_rule *r = detect_ruleset_rule(h.rs, 0);
    assert_string_equal(r->title, "Meta");
    assert_string_equal(r->name, "meta_rule");
    assert_string_equal(r->status, "test");
    assert_string_equal(r->level_name, "high");
    assert_int_equal(r->level, DETECT_LEVEL_HIGH);
    assert_int_equal(r->tag_count, 5);
    assert_int_equal(r->attack_count, 2);
    assert_string_equal(r->attack_ids[0], "T1059.001");
    assert_string_equal(r->attack_ids[1], "T1105");
    assert_string_equal(r->product, "windows");
    assert_string_equal(r->category, "process_creation");
    assert_string_equal(r->service, "");
    assert_string_equal(r->file, "test.yml");
    assert_int_equal(r->line, 1);
    assert_non_null(r->x_mamori_json);
    assert_string_equal(r->x_mamori_json, "{\"response\":[\"isolate\",\"kill_process\"],\"notify\":true,\"weight\":3}");
    assert_non_null(r->x_mamori);
    assert_int_equal(r->x_mamori->type, JSON_OBJECT);
    const json_value *resp = json_object_get(r->x_mamori, "response", 8);
    assert_non_null(resp);
    assert_int_equal(resp->type, JSON_ARRAY);
    assert_int_equal(resp->len, 2);
    buf b;
    buf_init(&b);
    detect_rule_write_json(&b, r);
    const char *js = buf_cstr(&b);
    assert_non_null(strstr(js, "\"id\":\"11111111-2222-3333-4444-555555555555\""));
    assert_non_null(strstr(js, "\"title\":\"Meta\""));
    assert_non_null(strstr(js, "\"level\":\"high\""));
    assert_non_null(strstr(js, "\"attack\":[\"T1059.001\",\"T1105\"]"));
    assert_non_null(strstr(js, "\"x-mamori\":{\"response\":[\"isolate\",\"kill_process\"]"));
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 4096);
    json_value v;
    json_error err;
    assert_int_equal(json_parse(p, &a, b.data, b.len, &v, &err), 0);
    arena_fini(&a);
    json_parser_destroy(p);
    buf_fini(&b);
    harness_fini(&h);
}

static void test_filters(void **state)
{
    (void)state;
    const char *yaml = RULE("r1", "") "---\n"
                       "title: Filter admins\nlogsource:\n    category: process_creation\n    product: windows\n"
                       "filter:\n    rules:\n        - r1\n    selection:\n        User|startswith: 'adm_'\n"
                       "    condition: selection\n";
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 1);
    assert_int_equal(harness_report(&h)->filters, 1);
    char ev[512];
    assert_true(harness_fires(&h, event_for("r1", ev, sizeof ev)));
    const char *admin = "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                        "\"EventData\":{\"Image\":\"C:\\\\r1.exe\",\"User\":\"ADM_jane\"}}}";
    assert_false(harness_fires(&h, admin));
    harness_fini(&h);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_directories(void **state)
{
    (void)state;
    char dir[] = "/tmp/mamori-detect-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/b.yml", dir);
    write_file(path, RULE("rb", ""));
    snprintf(path, sizeof path, "%s/sub/a.yaml", dir);
    write_file(path, RULE("ra", ""));
    snprintf(path, sizeof path, "%s/sub/notes.txt", dir);
    write_file(path, "not a rule");
    snprintf(path, sizeof path, "%s/sub/bad.yml", dir);
    write_file(path, "title: bad\nlogsource:\n    product: windows\ndetection:\n    a:\n        A: 1\n"
                     "    condition: a and b\n");

    detect_loader *l = detect_loader_create(NULL);
    char err[256];
    assert_int_equal(detect_loader_add_path(l, dir, err, sizeof err), 0);
    assert_true(detect_loader_add_path(l, "/nonexistent/mamori/rules", err, sizeof err) < 0);
    assert_non_null(strstr(err, "/nonexistent/mamori/rules"));
    detect_ruleset *rs;
    assert_int_equal(detect_loader_build(l, &rs, err, sizeof err), 0);
    const detect_report *r = detect_loader_report(l);
    assert_int_equal(r->files, 3);
    assert_int_equal(r->loaded, 2);
    assert_int_equal(r->rejected, 1);
    assert_int_equal(r->problems[0].line, 7);
    assert_non_null(strstr(r->problems[0].file, "sub/bad.yml"));
    /* sorted walk: b.yml before sub/ */
    assert_string_equal(detect_ruleset_rule(rs, 0)->id, "rb");
    assert_string_equal(detect_ruleset_rule(rs, 1)->id, "ra");
    assert_true(r->databases >= 1);
    assert_true(r->database_bytes > 0);
    /* the rule set's read-mostly data on one mapping for huge pages (detect/hot.c), but under
     * AddressSanitizer, which checks it on the heap: the other unit tests evaluate either way */
#if defined(__SANITIZE_ADDRESS__)
    assert_true(r->hot_bytes == 0);
#else
    assert_true(r->hot_bytes > 0);
#endif
    detect_ruleset_unref(rs);
    detect_loader_destroy(l);

    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

/* Single-quoted scalars are decoded from the source (libfyaml 0.7.12 leaks formatting ones
 * with many '' escapes): escapes and YAML line folding must come out as YAML defines them. */
static void test_single_quoted_values(void **state)
{
    (void)state;
    const char *yaml = "title: q\nid: q\nlogsource:\n    category: process_creation\n    product: windows\n"
                       "detection:\n    sel:\n        CommandLine:\n"
                       "            - 'it''s a\n              folded   \n\n              value'\n"
                       "            - '''''''''''''''''''''''''x'''''''''''''''''''''''''\n"
                       /* libfyaml 0.7.12 decodes this one as "-Join'''" (SigmaHQ's CrackMapExec rule) */
                       "            - '( $env:ComSpec[4,*,25]-Join'''')'\n"
                       "    condition: sel\n";
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 1);
    const char *ev = "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                     "\"EventData\":{\"CommandLine\":\"it's a folded\\nvalue\"}}}";
    assert_true(harness_fires(&h, ev));
    const char *quotes = "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                         "\"EventData\":{\"CommandLine\":\"''''''''''''x''''''''''''\"}}}";
    assert_true(harness_fires(&h, quotes));
    const char *join = "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                       "\"EventData\":{\"CommandLine\":\"( $env:ComSpec[4,*,25]-Join'')\"}}}";
    assert_true(harness_fires(&h, join));
    harness_fini(&h);
}

static void test_empty_ruleset(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, "");
    harness_expect_loaded(&h, 0);
    char ev[512];
    assert_false(harness_fires(&h, event_for("x", ev, sizeof ev)));
    harness_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_document_and_problems),
        cmocka_unit_test(test_structural_rejections),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_directories),
        cmocka_unit_test(test_single_quoted_values),
        cmocka_unit_test(test_empty_ruleset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
