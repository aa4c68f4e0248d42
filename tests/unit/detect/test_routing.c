/* tests/unit/detect/test_routing.c — logsource routing and field mapping. A rule sees only
 * events of its product/category/service (a process_creation rule never fires on a network
 * event, a Security rule never on Sysmon), and a Sigma field is found wherever the
 * normalizer put it for that event: the ECS path of core/ecs_map, winlog.event_data.<Field>
 * for unmapped fields and for fields another one displaced (Security 4688's ProcessId), the
 * winlog System fields, and the same ECS paths in native ECS events. */
#include "helpers.h"

static char *evtx(char *out, size_t len, const char *channel, int event_id, const char *data)
{
    snprintf(out, len,
             "{\"Event\":{\"System\":{\"Channel\":\"%s\",\"EventID\":%d,\"Computer\":\"ws1.corp\","
             "\"Provider\":{\"#attributes\":{\"Name\":\"P\"}}},\"EventData\":{%s}}}",
             channel, event_id, data);
    return out;
}

#define SYSMON "Microsoft-Windows-Sysmon/Operational"

static const char *proc_rule = "title: proc\nid: proc\nlogsource:\n    category: process_creation\n    product: windows\n"
                               "detection:\n    sel:\n        Image|endswith: '\\evil.exe'\n"
                               "        CommandLine|contains: 'steal'\n    condition: sel\n";

static void test_category_routing(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, proc_rule);
    harness_expect_loaded(&h, 1);
    char ev[1024];
    const char *data = "\"Image\":\"C:\\\\evil.exe\",\"CommandLine\":\"evil steal\"";
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 1, data)));
    /* the same fields in a network connection, a file event, a process access: never */
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 3, data)));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 11, data)));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 10, data)));
    /* Security 4688 is process_creation too: NewProcessName lands where Image does */
    assert_true(harness_fires(
        &h, evtx(ev, sizeof ev, "Security", 4688, "\"NewProcessName\":\"C:\\\\evil.exe\",\"CommandLine\":\"steal\"")));
    assert_false(harness_fires(
        &h, evtx(ev, sizeof ev, "Security", 4689, "\"NewProcessName\":\"C:\\\\evil.exe\",\"CommandLine\":\"steal\"")));
    harness_fini(&h);
}

static void test_4688_parent(void **state)
{
    (void)state;
    /* 4688's ParentProcessName is the creator's full path: ParentImage rules see it, and a
     * fieldref between Image and ParentImage compares the two paths */
    const char *rule = "title: parent\nid: parent\nlogsource:\n    category: process_creation\n    product: windows\n"
                       "detection:\n    sel:\n        ParentImage|endswith: '\\cmd.exe'\n    condition: sel\n";
    const char *self = "title: self\nid: self\nlogsource:\n    category: process_creation\n    product: windows\n"
                       "detection:\n    sel:\n        Image|fieldref: ParentImage\n    condition: sel\n";
    char ev[1024];
    harness h;
    harness_init(&h, rule);
    harness_expect_loaded(&h, 1);
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, "Security", 4688,
                                       "\"NewProcessName\":\"C:\\\\a.exe\",\"ParentProcessName\":\"C:\\\\Windows\\\\cmd.exe\"")));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, "Security", 4688,
                                        "\"NewProcessName\":\"C:\\\\a.exe\",\"ParentProcessName\":\"C:\\\\cmd.exe.bak\"")));
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 1, "\"ParentImage\":\"C:\\\\Windows\\\\cmd.exe\"")));
    harness_fini(&h);
    harness_init(&h, self);
    harness_expect_loaded(&h, 1);
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, "Security", 4688,
                                       "\"NewProcessName\":\"C:\\\\x.exe\",\"ParentProcessName\":\"C:\\\\x.exe\"")));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, "Security", 4688,
                                        "\"NewProcessName\":\"C:\\\\x.exe\",\"ParentProcessName\":\"C:\\\\y.exe\"")));
    harness_fini(&h);
}

static void test_system_level(void **state)
{
    (void)state;
    /* Sigma's Level is the evtx System level, a number (the normalizer also names it in
     * log.level); NXLog lines carry it as a top-level Level */
    const char *rule = "title: lvl\nid: lvl\nlogsource:\n    service: application\n    product: windows\n"
                       "detection:\n    sel:\n        EventID: 2027\n        Level: 2\n    condition: sel\n";
    const char *filtered = "title: kw\nid: kw\nlogsource:\n    service: application\n    product: windows\n"
                           "detection:\n    keywords:\n        - 'Trojan'\n    info:\n        Level: 4\n"
                           "    condition: keywords and not info\n";
#define LEVEL_EVENT(level)                                                                                      \
    "{\"Event\":{\"System\":{\"Channel\":\"Application\",\"EventID\":2027,\"Level\":" #level                           \
    ",\"Provider\":{\"#attributes\":{\"Name\":\"MSMQ\"}}},\"EventData\":{\"Data\":\"Trojan found\"}}}"
    harness h;
    harness_init(&h, rule);
    harness_expect_loaded(&h, 1);
    assert_true(harness_fires(&h, LEVEL_EVENT(2)));
    assert_false(harness_fires(&h, LEVEL_EVENT(4)));
    assert_true(harness_fires(&h, "{\"Channel\":\"Application\",\"EventID\":2027,\"Level\":\"2\",\"Hostname\":\"h\"}"));
    harness_fini(&h);
    harness_init(&h, filtered);
    harness_expect_loaded(&h, 1);
    assert_true(harness_fires(&h, LEVEL_EVENT(2)));
    assert_false(harness_fires(&h, LEVEL_EVENT(4))); /* an information-level event is filtered out */
    harness_fini(&h);
#undef LEVEL_EVENT
}

static void test_rendered_message(void **state)
{
    (void)state;
    /* Application-log rules test the rendered message (Message), which the normalizer keeps
     * in message: NXLog's Message, evtx's RenderingInfo */
    const char *rule = "title: msg\nid: msg\nlogsource:\n    service: application\n    product: windows\n"
                       "detection:\n    sel:\n        EventID: 1033\n        Message|contains: AteraAgent\n"
                       "    condition: sel\n";
    harness h;
    harness_init(&h, rule);
    harness_expect_loaded(&h, 1);
    assert_true(harness_fires(&h, "{\"Channel\":\"Application\",\"EventID\":1033,\"SourceName\":\"MsiInstaller\","
                                  "\"Hostname\":\"h\",\"Message\":\"Product: AteraAgent -- Installation completed.\"}"));
    assert_false(harness_fires(&h, "{\"Channel\":\"Application\",\"EventID\":1033,\"SourceName\":\"MsiInstaller\","
                                   "\"Hostname\":\"h\",\"Message\":\"Product: Other -- Installation completed.\"}"));
    assert_true(harness_fires(&h, "{\"Event\":{\"System\":{\"Channel\":\"Application\",\"EventID\":1033,"
                                  "\"Provider\":{\"#attributes\":{\"Name\":\"MsiInstaller\"}}},\"EventData\":{\"Data\":\"x\"},"
                                  "\"RenderingInfo\":{\"Message\":\"Product: AteraAgent\"}}}"));
    harness_fini(&h);
}

static void test_displaced_field(void **state)
{
    (void)state;
    /* 4688 carries NewProcessId (the new process) and ProcessId (its creator); both map to
     * process.pid, NewProcessId wins, ProcessId stays in EventData — a rule on ProcessId
     * must still see the creator's id */
    const char *rule = "title: pid\nid: pid\nlogsource:\n    category: process_creation\n    product: windows\n"
                       "detection:\n    sel:\n        ProcessId: 100\n    condition: sel\n";
    harness h;
    harness_init(&h, rule);
    harness_expect_loaded(&h, 1);
    char ev[1024];
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, "Security", 4688, "\"NewProcessId\":\"200\",\"ProcessId\":\"100\"")));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, "Security", 4688, "\"NewProcessId\":\"100\",\"ProcessId\":\"300\"")));
    /* Sysmon 1: ProcessId is the process itself, at process.pid */
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 1, "\"ProcessId\":\"100\"")));
    harness_fini(&h);
}

static void test_service_routing(void **state)
{
    (void)state;
    const char *rule = "title: sec\nid: sec\nlogsource:\n    service: security\n    product: windows\n"
                       "detection:\n    sel:\n        EventID: 4624\n        TargetUserName: bob\n    condition: sel\n";
    harness h;
    harness_init(&h, rule);
    harness_expect_loaded(&h, 1);
    char ev[1024];
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, "Security", 4624, "\"TargetUserName\":\"BOB\"")));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, "Security", 4625, "\"TargetUserName\":\"bob\"")));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, "System", 4624, "\"TargetUserName\":\"bob\"")));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 4624, "\"TargetUserName\":\"bob\"")));
    harness_fini(&h);
}

static void test_product_routing(void **state)
{
    (void)state;
    const char *rule = "title: lnx\nid: lnx\nlogsource:\n    category: process_creation\n    product: linux\n"
                       "detection:\n    sel:\n        Image|endswith: '/nc'\n    condition: sel\n";
    harness h;
    harness_init(&h, rule);
    harness_expect_loaded(&h, 1);
    char ev[1024];
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, "Linux-Sysmon/Operational", 1, "\"Image\":\"/usr/bin/nc\"")));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 1, "\"Image\":\"/usr/bin/nc\"")));
    harness_fini(&h);
}

static void test_ecs_events(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, proc_rule);
    const char *ecs = "{\"event\":{\"category\":[\"process\"],\"type\":[\"start\"]},\"host\":{\"os\":{\"type\":\"windows\"}},"
                      "\"process\":{\"executable\":\"C:\\\\evil.exe\",\"command_line\":\"steal it\"}}";
    assert_true(harness_fires(&h, ecs));
    /* no host.os.type: the category still routes it */
    assert_true(harness_fires(&h, "{\"event\":{\"category\":\"process\",\"type\":\"start\"},"
                                  "\"process\":{\"executable\":\"C:\\\\evil.exe\",\"command_line\":\"steal\"}}"));
    /* another OS, another category: no */
    assert_false(harness_fires(&h, "{\"event\":{\"category\":[\"process\"],\"type\":[\"start\"]},"
                                   "\"host\":{\"os\":{\"type\":\"linux\"}},\"process\":{\"executable\":\"C:\\\\evil.exe\","
                                   "\"command_line\":\"steal\"}}"));
    assert_false(harness_fires(&h, "{\"event\":{\"category\":[\"network\"],\"type\":[\"start\"]},"
                                   "\"process\":{\"executable\":\"C:\\\\evil.exe\",\"command_line\":\"steal\"}}"));
    harness_fini(&h);
}

/* One worker classifies a stream of ECS events whose routing inputs change from event to
 * event (event.category and event.type as strings or arrays, host.os.type in any case or
 * absent, dns.question.name present or not, fields added and dropped so their positions
 * move): each event routes as its own fields say (detect/scan.c remembers classifications by
 * those values, and where the fields were). */
static void test_ecs_classification_per_event(void **state)
{
    (void)state;
    static const char *const categories[] = {"process", "network", "dns", "file"};
    static const char *const products[] = {"windows", "linux"};
    char yaml[4096];
    size_t off = 0;
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 2; p++)
            off += (size_t)snprintf(yaml + off, sizeof yaml - off,
                                    "%stitle: t\nid: %s-%s\nlogsource:\n    category: %s\n    product: %s\n"
                                    "detection:\n    selection:\n        Image|endswith: '\\x.exe'\n"
                                    "    condition: selection\n",
                                    off ? "---\n" : "", categories[c], products[p],
                                    c == 0 ? "process_creation" : c == 1 ? "network_connection" : "dns_query",
                                    products[p]);
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 6);
    uint64_t x = 0x2545F4914F6CDD1Dull;
    uint32_t fired_total = 0;
    for (int e = 0; e < 600; e++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t r = (uint32_t)x;
        const char *cat = categories[r % 4], *cat2 = categories[(r >> 2) % 4];
        bool two = (r >> 4) & 1, array = (r >> 5) & 1;
        const char *type = (r >> 6) % 3 == 0 ? "start" : (r >> 6) % 3 == 1 ? "connection" : "end";
        int os = (int)((r >> 8) % 4); /* windows, Windows, linux, none */
        bool dns = (r >> 10) & 1, extra = (r >> 11) & 1;
        char category[64], json[512];
        if (array || two)
            snprintf(category, sizeof category, two ? "[\"%s\",\"%s\"]" : "[\"%s\"]", cat, cat2);
        else
            snprintf(category, sizeof category, "\"%s\"", cat);
        snprintf(json, sizeof json,
                 "{\"event\":{\"category\":%s,\"type\":%s%s%s},%s%s%s%s"
                 "\"process\":{\"executable\":\"C:\\\\x.exe\"}}",
                 category, array ? "[\"" : "\"", type, array ? "\"]" : "\"",
                 extra ? "\"agent\":{\"id\":\"a\"},\"file\":{\"path\":\"p\"}," : "",
                 dns ? "\"dns\":{\"question\":{\"name\":\"example.org\"}}," : "",
                 os == 3 ? "" : os == 2 ? "\"host\":{\"os\":{\"type\":\"linux\"}},"
                          : os == 1 ? "\"host\":{\"os\":{\"type\":\"Windows\"}},"
                                    : "\"host\":{\"os\":{\"type\":\"windows\"}},",
                 extra ? "\"user\":{\"name\":\"u\"}," : "");
        bool has[4] = {false, false, false, false};
        for (int c = 0; c < 4; c++) has[c] = !strcmp(cat, categories[c]) || (two && !strcmp(cat2, categories[c]));
        bool start = !strcmp(type, "start");
        bool want_cat[3] = {has[0] && start, has[1] && (start || !strcmp(type, "connection")), has[2] || (dns && has[1])};
        const char *ids[8];
        size_t n = harness_eval(&h, json, ids, 8);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 2; p++) {
                char id[32];
                snprintf(id, sizeof id, "%s-%s", categories[c], products[p]);
                bool fired = false;
                for (size_t i = 0; i < n; i++) fired |= !strcmp(ids[i], id);
                bool want = want_cat[c] && (os == 3 || (p == 0) == (os < 2));
                if (want != fired) fprintf(stderr, "event %d %s: rule %s fired %d, want %d\n", e, json, id, fired, want);
                assert_int_equal(want, fired);
                fired_total += fired;
            }
    }
    assert_true(fired_total > 100);
    harness_fini(&h);
}

static void test_registry_categories(void **state)
{
    (void)state;
    const char *rules = "title: ev\nid: ev\nlogsource:\n    category: registry_event\n    product: windows\n"
                        "detection:\n    sel:\n        TargetObject|contains: '\\Run\\'\n    condition: sel\n---\n"
                        "title: set\nid: set\nlogsource:\n    category: registry_set\n    product: windows\n"
                        "detection:\n    sel:\n        TargetObject|contains: '\\Run\\'\n    condition: sel\n";
    harness h;
    harness_init(&h, rules);
    harness_expect_loaded(&h, 2);
    char ev[1024];
    const char *ids[4];
    const char *data = "\"TargetObject\":\"HKLM\\\\Software\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Run\\\\x\"";
    assert_int_equal(harness_eval(&h, evtx(ev, sizeof ev, SYSMON, 13, data), ids, 4), 2);
    assert_string_equal(ids[0], "ev");
    assert_string_equal(ids[1], "set");
    assert_int_equal(harness_eval(&h, evtx(ev, sizeof ev, SYSMON, 12, data), ids, 4), 1);
    assert_string_equal(ids[0], "ev");
    harness_fini(&h);
}

static void test_unroutable(void **state)
{
    (void)state;
    const char *rule = "title: aws\nid: aws\nlogsource:\n    product: aws\n    service: cloudtrail\n"
                       "detection:\n    sel:\n        eventName: ConsoleLogin\n    condition: sel\n";
    harness h;
    harness_init(&h, rule);
    harness_expect_loaded(&h, 1);
    assert_int_equal(harness_report(&h)->unroutable, 1);
    assert_false(harness_fires(&h, "{\"eventName\":\"ConsoleLogin\"}"));
    harness_fini(&h);
}

static void test_keywords_route_by_product(void **state)
{
    (void)state;
    const char *rule = "title: kw\nid: kw\nlogsource:\n    product: windows\n"
                       "detection:\n    keywords:\n        - 'sekurlsa'\n    condition: keywords\n";
    harness h;
    harness_init(&h, rule);
    harness_expect_loaded(&h, 1);
    char ev[1024];
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 1, "\"CommandLine\":\"m sekurlsa::x\"")));
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, "Security", 4688, "\"CommandLine\":\"m sekurlsa::x\"")));
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, "Application", 1000, "\"Data\":\"sekurlsa\"")));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, "Linux-Sysmon/Operational", 1, "\"CommandLine\":\"sekurlsa\"")));
    /* the normalizer's own additions (event.type "start", event.category "process"…) are
     * not part of the record, so they are not searched */
    const char *kw_windows = "title: kw2\nid: kw2\nlogsource:\n    product: windows\n"
                             "detection:\n    keywords:\n        - 'start'\n        - 'process'\n    condition: keywords\n";
    harness h2;
    harness_init(&h2, kw_windows);
    assert_false(harness_fires(&h2, evtx(ev, sizeof ev, SYSMON, 1, "\"CommandLine\":\"x\"")));
    harness_fini(&h2);
    harness_fini(&h);
}

static void test_system_fields_and_case(void **state)
{
    (void)state;
    const char *rule = "title: sys\nid: sys\nlogsource:\n    product: windows\n    service: sysmon\n"
                       "detection:\n    sel:\n        EventID: 1\n        Computer: 'ws1.corp'\n        Provider_Name: P\n"
                       "        commandline|contains: 'x'\n    condition: sel\n";
    harness h;
    harness_init(&h, rule);
    harness_expect_loaded(&h, 1);
    char ev[1024];
    assert_true(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 1, "\"CommandLine\":\"x\"")));
    assert_false(harness_fires(&h, evtx(ev, sizeof ev, SYSMON, 2, "\"CommandLine\":\"x\"")));
    harness_fini(&h);
}

static void test_winlogbeat_and_nxlog_shapes(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, proc_rule);
    assert_true(harness_fires(&h, "{\"winlog\":{\"channel\":\"Microsoft-Windows-Sysmon/Operational\",\"event_id\":1,"
                                  "\"event_data\":{\"Image\":\"C:\\\\evil.exe\",\"CommandLine\":\"steal\"}}}"));
    assert_true(harness_fires(&h, "{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\","
                                  "\"Hostname\":\"ws1\",\"Image\":\"C:\\\\evil.exe\",\"CommandLine\":\"steal\"}"));
    harness_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_category_routing),
        cmocka_unit_test(test_4688_parent),
        cmocka_unit_test(test_system_level),
        cmocka_unit_test(test_rendered_message),       cmocka_unit_test(test_displaced_field),
        cmocka_unit_test(test_service_routing),        cmocka_unit_test(test_product_routing),
        cmocka_unit_test(test_ecs_events),             cmocka_unit_test(test_ecs_classification_per_event),             cmocka_unit_test(test_registry_categories),
        cmocka_unit_test(test_unroutable),             cmocka_unit_test(test_keywords_route_by_product),
        cmocka_unit_test(test_system_fields_and_case), cmocka_unit_test(test_winlogbeat_and_nxlog_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
