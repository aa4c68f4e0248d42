/* tests/unit/detect/test_correlate.c — Sigma correlation rules (detect/correlate.h), the engine's
 * semantics: every correlation example of the specification v2.1 with events that must fire
 * and near misses that must not (one event outside the span, wrong order, another group-by
 * value, one below the threshold), distinct counting, sums, averages, the value's share,
 * chains and `generate`, aliases, out-of-order arrival within and beyond the lateness
 * allowance, eviction and expiry counters. Loader rejections and state serialization are in
 * test_correlate_load.c. Events go through the real normalizer and detect_eval, as in
 * mamorictl scan. */
#include "correlate_helpers.h"

/* ---- the specification's examples --------------------------------------------------------------- */

static void failed_logins(ch *h, int from, int count, double t0, double step, const char *computer)
{
    for (int i = 0; i < count; i++) {
        char label[32], data[256];
        snprintf(label, sizeof label, "f%d", from + i);
        snprintf(data, sizeof data, "\"TargetUserName\":\"bob\",\"ComputerName\":\"%s\"", computer);
        sec(h, label, t0 + step * i, 4625, data);
    }
}

static void test_spec_event_count(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, EVENT_COUNT_YAML);
    assert_int_equal(correlate_set_count(h.set), 1);
    assert_int_equal(correlate_set_rule(h.set, 0)->timespan_us, 3600LL * 1000000);
    /* 100 failed logins on one host within the hour: one alert, at the 100th */
    failed_logins(&h, 0, 99, 0, 30, "dc1");
    assert_int_equal(h.count, 0);
    failed_logins(&h, 99, 1, 99 * 30, 30, "dc1");
    assert_int_equal(h.count, 1);
    assert_int_equal(h.standalone, 0); /* the base rule is only part of the correlation */
    assert_string_equal(h.alerts[0].group, "dc1");
    assert_int_equal(h.alerts[0].event_count, 100);
    assert_true(h.alerts[0].value == 100);
    assert_int_equal(h.alerts[0].first_us, BASE_US);
    assert_int_equal(h.alerts[0].last_us, BASE_US + 99 * 30 * 1000000LL);
    assert_true(strncmp(h.alerts[0].ids, "f0,f1,f2,", 9) == 0);
    assert_true(h.alerts[0].emit);

    /* one below the threshold */
    ch_engine(&h);
    failed_logins(&h, 0, 99, 0, 30, "dc1");
    assert_int_equal(h.count, 0);
    /* one event outside the span: the first of 100 is 3601 s before the last */
    ch_engine(&h);
    failed_logins(&h, 0, 1, 0, 0, "dc1");
    failed_logins(&h, 1, 99, 3601, 0.5, "dc1");
    assert_int_equal(h.count, 0);
    /* the same span exactly (last - first == timespan) is inside */
    ch_engine(&h);
    failed_logins(&h, 0, 1, 0, 0, "dc1");
    failed_logins(&h, 1, 99, 3600, 0, "dc1");
    assert_int_equal(h.count, 1);
    /* a different group-by value */
    ch_engine(&h);
    failed_logins(&h, 0, 99, 0, 1, "dc1");
    failed_logins(&h, 99, 1, 100, 1, "dc2");
    assert_int_equal(h.count, 0);
    /* matches are consumed by an alert: 250 events give two alerts, not 151 */
    ch_engine(&h);
    failed_logins(&h, 0, 250, 0, 1, "dc1");
    assert_int_equal(h.count, 2);
    assert_true(strncmp(h.alerts[1].ids, "f100,", 5) == 0);
    correlate_stats s = stats_of(&h);
    assert_int_equal(s.events, 50);
    assert_int_equal(s.alerts, 2);
    ch_fini(&h);
}

/* the schema example with an ECS field name as group-by (taxonomy: ecs) */
static void test_spec_event_count_ecs(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: Many DNS\nid: 0e95725d-7320-415d-80f7-004da920fc11\ntaxonomy: ecs\ncorrelation:\n"
                "    type: event_count\n    rules:\n        - dnsrule\n    group-by:\n        - dns.question.name\n"
                "    timespan: 1h\n    condition:\n        gte: 3\n---\n"
                "title: dns\nname: dnsrule\nlogsource:\n    category: dns_query\n    product: windows\n"
                "detection:\n    sel:\n        QueryName|endswith: '.example'\n    condition: sel\n");
    for (int i = 0; i < 3; i++) {
        char label[8], data[128];
        snprintf(label, sizeof label, "d%d", i);
        snprintf(data, sizeof data, "\"QueryName\":\"%s.example\"", i == 1 ? "b" : "a");
        ch_winlog(&h, label, i, "Microsoft-Windows-Sysmon/Operational", 22, data);
    }
    assert_int_equal(h.count, 0); /* a, b, a: two groups, two in a's */
    ch_winlog(&h, "d3", 3, "Microsoft-Windows-Sysmon/Operational", 22, "\"QueryName\":\"b.example\"");
    assert_int_equal(h.count, 0);
    ch_winlog(&h, "d4", 4, "Microsoft-Windows-Sysmon/Operational", 22, "\"QueryName\":\"a.example\"");
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].group, "a.example");
    assert_string_equal(h.alerts[0].ids, "d0,d2,d4");
    ch_fini(&h);
}

static const char *VALUE_COUNT_YAML =
    "title: Failed login\nid: 0e95725d-7320-415d-80f7-004da920fc12\ncorrelation:\n    type: value_count\n"
    "    rules:\n        - 5638f7c0-ac70-491d-8465-2a65075e0d86\n    group-by:\n        - ComputerName\n"
    "        - WorkstationName\n    timespan: 1d\n    condition:\n        field: User\n        gte: 100\n---\n" FAILED_LOGIN;

static void users(ch *h, int from, int count, int distinct, double t0, const char *ws)
{
    for (int i = 0; i < count; i++) {
        char label[32], data[256];
        snprintf(label, sizeof label, "u%d", from + i);
        snprintf(data, sizeof data, "\"User\":\"user%d\",\"ComputerName\":\"dc1\",\"WorkstationName\":\"%s\"",
                 (from + i) % distinct, ws);
        sec(h, label, t0 + 60.0 * i, 4625, data);
    }
}

static void test_spec_value_count(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, VALUE_COUNT_YAML);
    /* 150 attempts over 99 distinct users: no */
    users(&h, 0, 150, 99, 0, "ws1");
    assert_int_equal(h.count, 0);
    /* the 100th distinct user fires */
    sec(&h, "u-new", 150 * 60.0, 4625, "\"User\":\"newcomer\",\"ComputerName\":\"dc1\",\"WorkstationName\":\"ws1\"");
    assert_int_equal(h.count, 1);
    assert_true(h.alerts[0].value == 100);
    assert_string_equal(h.alerts[0].group, "dc1|ws1");
    assert_int_equal(h.alerts[0].event_count, 151);
    /* the 100th user on another workstation: another group */
    ch_engine(&h);
    users(&h, 0, 99, 99, 0, "ws1");
    sec(&h, "x", 6000, 4625, "\"User\":\"newcomer\",\"ComputerName\":\"dc1\",\"WorkstationName\":\"ws2\"");
    assert_int_equal(h.count, 0);
    /* the first user's attempt more than a day before the 100th */
    ch_engine(&h);
    users(&h, 0, 1, 100, 0, "ws1");
    users(&h, 1, 99, 100, 86401, "ws1");
    assert_int_equal(h.count, 0);
    /* an event without the field is not counted (and counted as missing) */
    ch_engine(&h);
    sec(&h, "nofield", 0, 4625, "\"ComputerName\":\"dc1\",\"WorkstationName\":\"ws1\"");
    assert_int_equal(stats_of(&h).missing_field, 1);
    assert_int_equal(stats_of(&h).events, 0);
    ch_fini(&h);
}

static const char *TEMPORAL_YAML = "title: Recon\ncorrelation:\n    type: temporal\n    rules:\n        - recon_cmd_a\n"
                                   "        - recon_cmd_b\n        - recon_cmd_c\n    group-by:\n        - ComputerName\n"
                                   "        - User\n    timespan: 5m\n---\n" RECON_RULES;

static void test_spec_temporal(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, TEMPORAL_YAML);
    const double t[] = {0, 100, 299, 400, 450};
    recon(&h, "cab", t, NULL); /* any order */
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].group, "ws1|bob");
    assert_string_equal(h.alerts[0].ids, "c0,a1,b2");
    assert_true(h.alerts[0].value == 3);
    /* one outside the span */
    ch_engine(&h);
    const double late[] = {0, 100, 301};
    recon(&h, "cab", late, NULL);
    assert_int_equal(h.count, 0);
    /* two of three, with repeats */
    ch_engine(&h);
    recon(&h, "aabba", t, NULL);
    assert_int_equal(h.count, 0);
    /* a different user for one of them */
    ch_engine(&h);
    recon(&h, "ab", t, NULL);
    const double t2[] = {200};
    recon(&h, "c", t2, "alice");
    assert_int_equal(h.count, 0);
    ch_fini(&h);
}

static void test_spec_temporal_ordered(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, TEMPORAL_ORDERED_YAML);
    const double t[] = {0, 10, 20, 30, 40};
    recon(&h, "abc", t, NULL);
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].ids, "a0,b1,c2");
    /* wrong order */
    ch_engine(&h);
    recon(&h, "cba", t, NULL);
    assert_int_equal(h.count, 0);
    ch_engine(&h);
    recon(&h, "acb", t, NULL);
    assert_int_equal(h.count, 0);
    /* noise between the steps is fine; the earliest in-order matches are taken */
    ch_engine(&h);
    recon(&h, "cabac", t, NULL);
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].ids, "a1,b2,c4");
    /* the whole sequence must fit the span */
    ch_engine(&h);
    const double wide[] = {0, 200, 301};
    recon(&h, "abc", wide, NULL);
    assert_int_equal(h.count, 0);
    /* another group-by value */
    ch_engine(&h);
    recon(&h, "ab", t, NULL);
    const double t2[] = {20};
    recon(&h, "c", t2, "alice");
    assert_int_equal(h.count, 0);
    ch_fini(&h);
}

/* One event matching two steps fills one of them: alone it is no sequence; after an event
 * of the first step it completes one. */
static void test_temporal_ordered_one_event_one_step(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: x then a\ncorrelation:\n    type: temporal_ordered\n    rules:\n        - has_x\n"
                "        - ends_a\n    group-by:\n        - User\n    timespan: 5m\n---\n"
                "title: has_x\nname: has_x\nlogsource:\n    category: process_creation\n    product: windows\n"
                "detection:\n    sel:\n        Image|contains: 'x'\n    condition: sel\n---\n"
                "title: ends_a\nname: ends_a\nlogsource:\n    category: process_creation\n    product: windows\n"
                "detection:\n    sel:\n        Image|endswith: 'a.exe'\n    condition: sel\n");
    proc(&h, "xa0", 0, "xa", "\"User\":\"bob\"");
    assert_int_equal(h.count, 0);
    proc(&h, "x1", 10, "x", "\"User\":\"bob\"");
    proc(&h, "xa2", 20, "xa", "\"User\":\"bob\"");
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].ids, "xa0,xa2"); /* the earliest in-order matches: xa0 as step 0 */
    ch_fini(&h);
}

#define WEB_RULE                                                                                                     \
    "title: website access\nname: website_access\nlogsource:\n    category: network_connection\n    product: windows\n" \
    "detection:\n    sel:\n        Image|endswith: '\\browser.exe'\n    condition: sel\n"

static void web(ch *h, const char *label, double t, const char *src, const char *user, const char *field,
                const char *value)
{
    char data[512];
    snprintf(data, sizeof data,
             "\"Image\":\"C:\\\\browser.exe\",\"SourceIp\":\"%s\",\"User\":\"%s\",\"%s\":%s", src, user, field, value);
    ch_winlog(h, label, t, "Microsoft-Windows-Sysmon/Operational", 3, data);
}

/* A fresh engine fed two accesses of 10.0.0.1 / bob: "w0" at 0 s with `field` = `v0`, then
 * "w1" at `t1_s` with `v1` (values are JSON text). */
static void web_pair(ch *h, const char *field, const char *v0, double t1_s, const char *v1)
{
    ch_engine(h);
    web(h, "w0", 0, "10.0.0.1", "bob", field, v0);
    web(h, "w1", t1_s, "10.0.0.1", "bob", field, v1);
}

static void test_spec_value_sum(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: Possible Exfiltration to Website\ncorrelation:\n    type: value_sum\n    rules:\n"
                "        - website_access\n    group-by:\n        - SourceIP\n        - User\n    timespan: 1h\n"
                "    condition:\n        field: bytes_sent\n        gt: 1000000\n---\n" WEB_RULE);
    web_pair(&h, "bytes_sent", "600000", 60, "\"400001\""); /* numeric strings count */
    assert_int_equal(h.count, 1);
    assert_true(h.alerts[0].value == 1000001);
    assert_string_equal(h.alerts[0].group, "10.0.0.1|bob");
    /* exactly the limit is not greater */
    web_pair(&h, "bytes_sent", "600000", 60, "400000");
    assert_int_equal(h.count, 0);
    /* outside the span */
    web_pair(&h, "bytes_sent", "600000", 3601, "400001");
    assert_int_equal(h.count, 0);
    /* other group, and a value that is no number (counted) */
    ch_engine(&h);
    web(&h, "w0", 0, "10.0.0.1", "bob", "bytes_sent", "600000");
    web(&h, "w1", 1, "10.0.0.2", "bob", "bytes_sent", "400001");
    web(&h, "w2", 2, "10.0.0.1", "bob", "bytes_sent", "\"lots\"");
    assert_int_equal(h.count, 0);
    assert_int_equal(stats_of(&h).not_numeric, 1);
    ch_fini(&h);
}

static void test_spec_value_avg(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: Suspicious average network traffic\ncorrelation:\n    type: value_avg\n    rules:\n"
                "        - website_access\n    group-by:\n        - SourceIP\n        - User\n    timespan: 24h\n"
                "    condition:\n        field: BytesOut\n        gt: 500\n---\n" WEB_RULE);
    web(&h, "w0", 0, "10.0.0.1", "bob", "BytesOut", "400");
    assert_int_equal(h.count, 0);
    web(&h, "w1", 60, "10.0.0.1", "bob", "BytesOut", "700");
    assert_int_equal(h.count, 1);
    assert_true(h.alerts[0].value == 550);
    assert_string_equal(h.alerts[0].ids, "w0,w1");
    /* an average of exactly 500 is not greater */
    web_pair(&h, "BytesOut", "400", 60, "600");
    assert_int_equal(h.count, 0);
    /* the low value left the 24 h window: 600 alone averages over 500 */
    web_pair(&h, "BytesOut", "400", 86401, "600");
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].ids, "w1");
    ch_fini(&h);
}

static void test_spec_value_percentile(void **state)
{
    (void)state;
    ch h;
    const char *yaml = "title: A computer spawned a processes name in the last 24h than 1% of all the processes.\n"
                       "correlation:\n    type: value_percentile\n    rules:\n        - process_creation\n"
                       "    group-by:\n        - ComputerName\n    timespan: 24h\n    condition:\n        field: Image\n"
                       "        lte: 1\n---\n"
                       "title: any process\nname: process_creation\nlogsource:\n    category: process_creation\n"
                       "    product: windows\ndetection:\n    sel:\n        Image|endswith: '.exe'\n    condition: sel\n";
    ch_init(&h, yaml);
    /* 99 common starts, then a rare one: 1 of 100 = 1 % */
    for (int i = 0; i < 99; i++) {
        char label[16];
        snprintf(label, sizeof label, "p%d", i);
        proc(&h, label, i, "common", "");
    }
    assert_int_equal(h.count, 0);
    proc(&h, "rare", 100, "rare", "");
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].ids, "rare");
    assert_true(h.alerts[0].value == 1);
    assert_string_equal(h.alerts[0].group, "ws1");
    /* one below: 1 of 99 is over 1 % */
    ch_engine(&h);
    for (int i = 0; i < 98; i++) proc(&h, "p", i, "common", "");
    proc(&h, "rare", 100, "rare", "");
    assert_int_equal(h.count, 0);
    ch_fini(&h);
}

/* The specification's complete example: failed logins followed by a successful login. */

static void logins(ch *h, const char *user, int failed, double t0, bool success_first)
{
    char data[128];
    snprintf(data, sizeof data, "\"User\":\"%s\"", user);
    if (success_first) sec(h, "ok", t0 - 1, 4624, data);
    for (int i = 0; i < failed; i++) {
        char label[16];
        snprintf(label, sizeof label, "f%d", i);
        sec(h, label, t0 + i, 4625, data);
    }
    if (!success_first) sec(h, "ok", t0 + failed + 5, 4624, data);
}

static void test_spec_chain_failed_then_success(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, CHAIN_YAML);
    assert_int_equal(correlate_set_count(h.set), 2);
    logins(&h, "bob", 10, 0, false);
    assert_int_equal(h.count, 2); /* the inner event_count alert feeds the outer one */
    assert_false(h.alerts[0].emit);
    assert_string_equal(h.alerts[0].rule, "Multiple failed logons");
    assert_int_equal(alerts_emitted(&h), 1);
    const got *a = last_emitted(&h);
    assert_string_equal(a->rule, "Correlation - Multiple Failed Logins Followed by Successful Login");
    assert_string_equal(a->group, "bob");
    assert_int_equal(a->event_count, 11); /* every contributing base event */
    assert_string_equal(a->ids, "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,ok");
    assert_int_equal(a->first_us, BASE_US + 9 * 1000000LL); /* the inner alert's time is its last event */
    assert_int_equal(a->last_us, BASE_US + 15 * 1000000LL);
    assert_int_equal(h.standalone, 0); /* no generate: the base rules do not alert alone */
    /* nine failures */
    ch_engine(&h);
    logins(&h, "bob", 9, 0, false);
    assert_int_equal(alerts_emitted(&h), 0);
    /* success before the failures */
    ch_engine(&h);
    logins(&h, "bob", 10, 0, true);
    assert_int_equal(alerts_emitted(&h), 0);
    /* failures of one user, success of another */
    ch_engine(&h);
    for (int i = 0; i < 10; i++) sec(&h, "f", i, 4625, "\"User\":\"alice\"");
    sec(&h, "ok", 20, 4624, "\"User\":\"bob\"");
    assert_int_equal(alerts_emitted(&h), 0);
    assert_int_equal(h.count, 1); /* alice's inner alert only */
    /* the success more than 10 minutes after the tenth failure */
    ch_engine(&h);
    for (int i = 0; i < 10; i++) sec(&h, "f", i, 4625, "\"User\":\"bob\"");
    sec(&h, "ok", 9 + 601, 4624, "\"User\":\"bob\"");
    assert_int_equal(alerts_emitted(&h), 0);
    ch_fini(&h);
}

static void test_generate_keeps_base_alerts(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: many\nid: c1\ngenerate: true\ncorrelation:\n    type: event_count\n    rules: [failed_login]\n"
                "    group-by: [User]\n    timespan: 1m\n    condition:\n        gte: 2\n---\n" FAILED_LOGIN "---\n"
                PROC_RULE("unrelated", "x"));
    sec(&h, "a", 0, 4625, "\"User\":\"bob\"");
    assert_int_equal(h.standalone, 1);
    proc(&h, "p", 1, "x", "");
    assert_int_equal(h.standalone, 2); /* a rule no correlation uses is always standalone */
    ch_fini(&h);
}

/* No group-by: every match is in one group (and the alert's group is empty). */
static void test_no_group_by(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: any three\nid: c1\ncorrelation:\n    type: event_count\n    rules: [failed_login]\n"
                "    timespan: 1m\n    condition:\n        gte: 3\n---\n" FAILED_LOGIN);
    sec(&h, "a", 0, 4625, "\"User\":\"u1\"");
    sec(&h, "b", 1, 4625, "");
    sec(&h, "c", 2, 4625, "\"User\":\"u3\"");
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].group, "");
    assert_string_equal(h.alerts[0].ids, "a,b,c");
    correlate_stats s;
    correlate_engine_stats(h.eng, 0, &s);
    assert_int_equal(s.matches, 3);
    assert_int_equal(s.alerts, 1);
    assert_int_equal(s.keys, 0); /* consumed: nothing held */
    ch_fini(&h);
}

/* The aliases example: the same address as destination in one rule's events and as source
 * in the other's. */
static void test_spec_aliases(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: aliases\nid: c-alias\ncorrelation:\n    type: temporal\n    rules:\n        - internal_error\n"
                "        - new_network_connection\n    group-by:\n        - internal_ip\n        - remote_ip\n"
                "    timespan: 10s\n    aliases:\n        internal_ip:\n            internal_error: destination.ip\n"
                "            new_network_connection: source.ip\n        remote_ip:\n"
                "            internal_error: source.ip\n            new_network_connection: destination.ip\n---\n"
                "title: internal error\nname: internal_error\nlogsource:\n    category: network_connection\n"
                "    product: windows\ndetection:\n    sel:\n        Image|endswith: '\\web.exe'\n    condition: sel\n---\n"
                "title: new connection\nname: new_network_connection\nlogsource:\n    category: network_connection\n"
                "    product: windows\ndetection:\n    sel:\n        Image|endswith: '\\client.exe'\n    condition: sel\n");
    const char *ch3 = "Microsoft-Windows-Sysmon/Operational";
    ch_winlog(&h, "err", 0, ch3, 3, "\"Image\":\"C:\\\\web.exe\",\"SourceIp\":\"1.2.3.4\",\"DestinationIp\":\"10.0.0.5\"");
    ch_winlog(&h, "conn", 5, ch3, 3, "\"Image\":\"C:\\\\client.exe\",\"SourceIp\":\"10.0.0.5\",\"DestinationIp\":\"1.2.3.4\"");
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].group, "10.0.0.5|1.2.3.4");
    assert_string_equal(h.alerts[0].ids, "err,conn");
    /* the same addresses in the same roles do not pair */
    ch_engine(&h);
    ch_winlog(&h, "err", 0, ch3, 3, "\"Image\":\"C:\\\\web.exe\",\"SourceIp\":\"1.2.3.4\",\"DestinationIp\":\"10.0.0.5\"");
    ch_winlog(&h, "conn", 5, ch3, 3, "\"Image\":\"C:\\\\client.exe\",\"SourceIp\":\"1.2.3.4\",\"DestinationIp\":\"10.0.0.5\"");
    assert_int_equal(h.count, 0);
    /* eleven seconds apart */
    ch_engine(&h);
    ch_winlog(&h, "err", 0, ch3, 3, "\"Image\":\"C:\\\\web.exe\",\"SourceIp\":\"1.2.3.4\",\"DestinationIp\":\"10.0.0.5\"");
    ch_winlog(&h, "conn", 11, ch3, 3, "\"Image\":\"C:\\\\client.exe\",\"SourceIp\":\"10.0.0.5\",\"DestinationIp\":\"1.2.3.4\"");
    assert_int_equal(h.count, 0);
    ch_fini(&h);
}

/* ---- event time, lateness, bounds --------------------------------------------------------------- */

static void test_out_of_order_within_allowance(void **state)
{
    (void)state;
    ch h;
    ch_init_lateness(&h, TEMPORAL_ORDERED_YAML, 60);
    /* c and b arrive first, a (earlier event time, 50 s behind the watermark) last */
    const double tc[] = {30}, tb[] = {20}, ta[] = {10};
    recon(&h, "c", tc, NULL);
    recon(&h, "b", tb, NULL);
    assert_int_equal(h.count, 0);
    recon(&h, "a", ta, NULL);
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].ids, "a0,b0,c0");
    assert_int_equal(stats_of(&h).late, 0);
    assert_int_equal(correlate_engine_watermark(h.eng), BASE_US + 30 * 1000000LL);

    /* a sequence completed by a late first step: the windows after it are checked */
    ch_engine(&h);
    const double t1[] = {100, 101};
    recon(&h, "bc", t1, NULL);
    const double t0[] = {99};
    recon(&h, "a", t0, NULL);
    assert_int_equal(h.count, 1);
    ch_fini(&h);
}

static void test_late_beyond_allowance(void **state)
{
    (void)state;
    ch h;
    ch_init_lateness(&h, TEMPORAL_ORDERED_YAML, 60);
    const double tb[] = {100, 170};
    recon(&h, "bc", tb, NULL); /* watermark 170 */
    const double ta[] = {95};  /* 75 s behind: late */
    recon(&h, "a", ta, NULL);
    assert_int_equal(h.count, 0);
    correlate_stats s = stats_of(&h);
    assert_int_equal(s.late, 1);
    correlate_stats one;
    correlate_engine_stats(h.eng, 0, &one);
    assert_int_equal(one.late, 1);
    /* exactly at watermark - allowance is still accepted */
    const double tok[] = {110};
    recon(&h, "a", tok, NULL);
    assert_int_equal(stats_of(&h).late, 1);
    ch_fini(&h);
}

/* Lateness is per key: one key far ahead does not make another key's matches late; an agent
 * sending its spool hours late (receive time now, event times then) still completes its
 * sequence; keys idle for a window and the allowance of arrival time expire. */
static void test_lateness_per_key_and_arrival_expiry(void **state)
{
    (void)state;
    ch h;
    ch_init_lateness(&h, TEMPORAL_ORDERED_YAML, 60);
    const double far[] = {1000};
    recon(&h, "a", far, "alice"); /* the engine's watermark: 1000 s */
    const double t[] = {100, 110, 120};
    recon(&h, "abc", t, "bob"); /* 900 s behind the watermark, in order for bob */
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].group, "ws1|bob");
    assert_int_equal(stats_of(&h).late, 0);
    /* late for its own key still */
    recon(&h, "b", far, "carol");
    const double old[] = {900};
    recon(&h, "a", old, "carol");
    assert_int_equal(stats_of(&h).late, 1);

    /* a spool: received two hours after the events, after other agents' live matches */
    ch_engine(&h);
    h.received_us = BASE_US + 7200 * 1000000LL;
    const double live[] = {7200};
    recon(&h, "a", live, "alice");
    const double spool[] = {10, 20, 30};
    recon(&h, "abc", spool, "dave");
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].group, "ws1|dave");
    /* alice's half sequence idles: expired once the arrival clock passes 5m + 60 s */
    h.received_us = BASE_US + (7200 + 361) * 1000000LL;
    const double later[] = {7561};
    recon(&h, "a", later, "erin");
    correlate_stats st = stats_of(&h);
    assert_int_equal(st.keys, 1); /* erin only */
    assert_true(st.expired_events >= 1);
    /* a restored key arrives with the next match: a process down for 16 minutes still
     * completes a sequence whose steps are within the span by event time */
    ch_engine(&h);
    h.received_us = BASE_US + 7200 * 1000000LL;
    const double first[] = {10};
    recon(&h, "a", first, "frank");
    buf saved;
    buf_init(&saved);
    correlate_state_encode(h.eng, 0, &saved);
    ch_engine(&h);
    assert_int_equal(correlate_state_decode(h.eng, 0, saved.data, saved.len), 0);
    h.received_us = BASE_US + (7200 + 1000) * 1000000LL;
    const double rest[] = {20, 30};
    recon(&h, "bc", rest, "frank");
    assert_int_equal(h.count, 1);
    assert_string_equal(h.alerts[0].ids, "a0,b0,c1");
    buf_fini(&saved);
    h.received_us = 0;
    ch_fini(&h);
}

static void test_eviction_and_expiry(void **state)
{
    (void)state;
    correlate_options opt;
    correlate_options_default(&opt);
    opt.keys_max = 2;
    opt.events_per_key_max = 3;
    opt.lateness_us = 0;
    ch h;
    ch_init_opt(&h, "title: c\nid: c1\ncorrelation:\n    type: event_count\n    rules: [failed_login]\n"
                    "    group-by: [User]\n    timespan: 1m\n    condition:\n        gte: 4\n---\n" FAILED_LOGIN,
                &opt);
    /* three keys with two allowed: the least recently updated (u1) goes */
    sec(&h, "a", 0, 4625, "\"User\":\"u1\"");
    sec(&h, "b", 1, 4625, "\"User\":\"u2\"");
    sec(&h, "c", 2, 4625, "\"User\":\"u2\"");
    sec(&h, "d", 3, 4625, "\"User\":\"u3\"");
    correlate_stats s = stats_of(&h);
    assert_int_equal(s.keys, 2);
    assert_int_equal(s.evicted_keys, 1);
    assert_int_equal(s.evicted_events, 1);
    /* four events of one key with three kept: the threshold of 4 is never reached */
    for (int i = 0; i < 4; i++) sec(&h, "e", 4 + i, 4625, "\"User\":\"u3\"");
    s = stats_of(&h);
    assert_int_equal(h.count, 0);
    assert_int_equal(s.evicted_events, 1 + 2);
    assert_int_equal(s.events, 3 + 2);
    /* two minutes later everything before is out of every future window */
    sec(&h, "f", 130, 4625, "\"User\":\"u9\"");
    s = stats_of(&h);
    assert_int_equal(s.keys, 1);
    assert_int_equal(s.events, 1);
    assert_int_equal(s.expired_events, 5);
    ch_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_event_count),
        cmocka_unit_test(test_spec_event_count_ecs),
        cmocka_unit_test(test_spec_value_count),
        cmocka_unit_test(test_spec_temporal),
        cmocka_unit_test(test_spec_temporal_ordered),
        cmocka_unit_test(test_temporal_ordered_one_event_one_step),
        cmocka_unit_test(test_lateness_per_key_and_arrival_expiry),
        cmocka_unit_test(test_spec_value_sum),
        cmocka_unit_test(test_spec_value_avg),
        cmocka_unit_test(test_spec_value_percentile),
        cmocka_unit_test(test_spec_chain_failed_then_success),
        cmocka_unit_test(test_generate_keeps_base_alerts),
        cmocka_unit_test(test_no_group_by),
        cmocka_unit_test(test_spec_aliases),
        cmocka_unit_test(test_out_of_order_within_allowance),
        cmocka_unit_test(test_late_beyond_allowance),
        cmocka_unit_test(test_eviction_and_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
