/* tests/unit/detect/test_correlate.c — Sigma correlation rules (detect/correlate.h): every
 * correlation example of the specification v2.1 with events that must fire and near misses
 * that must not (one event outside the span, wrong order, another group-by value, one
 * below the threshold), distinct counting, sums, averages, the value's share, chains and
 * `generate`, aliases, out-of-order arrival within and beyond the lateness allowance,
 * eviction and expiry counters, loader rejections with lines, state serialization. Events
 * go through the real normalizer and detect_eval, as in mamorictl scan. */
#include "helpers.h"

#include "core/clock.h"
#include "detect/correlate.h"

#include <errno.h>

#define BASE_US 1714564800000000LL /* 2024-05-01T12:00:00Z */
#define ALERTS_MAX 256

typedef struct got {
    char rule[128];
    char group[512]; /* values joined by '|' */
    char ids[4096];  /* joined by ',' */
    size_t event_count;
    int64_t first_us, last_us;
    double value;
    bool emit;
    char id[33];
} got;

typedef struct ch {
    detect_loader *loader;
    detect_ruleset *rs;
    correlate_set *set;
    correlate_engine *eng;
    correlate_options opt;
    detect_worker *worker;
    json_parser *parser;
    normalizer *norm;
    arena mem;
    got alerts[ALERTS_MAX];
    int count;
    int standalone; /* base-rule matches that alert on their own */
} ch;

static void on_alert(void *ctx, const correlate_alert *a)
{
    ch *h = ctx;
    assert_true(h->count < ALERTS_MAX);
    got *g = &h->alerts[h->count++];
    memset(g, 0, sizeof *g);
    snprintf(g->rule, sizeof g->rule, "%s", a->rule->info.title);
    for (uint32_t i = 0; i < a->rule->group_count; i++) {
        size_t n = strlen(g->group);
        snprintf(g->group + n, sizeof g->group - n, "%s%s", i ? "|" : "", a->group_values[i]);
    }
    for (size_t i = 0; i < a->event_count; i++) {
        size_t n = strlen(g->ids);
        snprintf(g->ids + n, sizeof g->ids - n, "%s%s", i ? "," : "", a->event_ids[i]);
    }
    g->event_count = a->event_count;
    g->first_us = a->first_us;
    g->last_us = a->last_us;
    g->value = a->value;
    g->emit = a->emit;
    correlate_alert_id(a, g->id);
}

static void ch_engine(ch *h)
{
    correlate_engine_destroy(h->eng);
    h->eng = correlate_engine_create(h->set, &h->opt);
    h->count = 0;
    h->standalone = 0;
}

static void ch_init_opt(ch *h, const char *yaml, const correlate_options *copt)
{
    memset(h, 0, sizeof *h);
    detect_options opt;
    detect_options_default(&opt);
    opt.correlations = true;
    h->loader = detect_loader_create(&opt);
    detect_loader_add_text(h->loader, "corr.yml", yaml, strlen(yaml));
    char err[256];
    assert_int_equal(detect_loader_build(h->loader, &h->rs, err, sizeof err), 0);
    assert_int_equal(correlate_set_build(h->loader, h->rs, &h->set), 0);
    const detect_report *r = detect_loader_report(h->loader);
    if (r->rejected || r->skipped) harness_print_problems(r);
    assert_int_equal(r->rejected + r->skipped, 0);
    assert_int_equal(r->correlations, correlate_set_count(h->set));
    if (copt) h->opt = *copt;
    else correlate_options_default(&h->opt);
    h->worker = detect_worker_create();
    assert_int_equal(detect_worker_bind(h->worker, h->rs), 0);
    h->parser = json_parser_create();
    h->norm = normalizer_create();
    arena_init(&h->mem, 64 * 1024);
    ch_engine(h);
}

static void ch_init(ch *h, const char *yaml) { ch_init_opt(h, yaml, NULL); }

static void ch_fini(ch *h)
{
    arena_fini(&h->mem);
    normalizer_destroy(h->norm);
    json_parser_destroy(h->parser);
    detect_worker_destroy(h->worker);
    correlate_engine_destroy(h->eng);
    correlate_set_destroy(h->set);
    detect_ruleset_unref(h->rs);
    detect_loader_destroy(h->loader);
}

/* One event (JSON, any format); every rule it matches is fed with event id `label`. */
static void ch_json(ch *h, const char *label, const char *json)
{
    arena_reset(&h->mem);
    json_value v;
    json_error jerr;
    assert_int_equal(json_parse(h->parser, &h->mem, json, strlen(json), &v, &jerr), 0);
    event_stamp stamp = {.tenant = "t", .agent_id = "a", .agent_hash = 1, .seq = 1, .received_us = BASE_US};
    mamori_event ev;
    char why[128];
    int rc = normalize_event(h->norm, &h->mem, EVENT_FORMAT_AUTO, &v, &stamp, 0, &ev, why, sizeof why);
    if (rc) fprintf(stderr, "normalize: %s\n", why);
    assert_int_equal(rc, 0);
    const detect_match *m;
    size_t n = detect_eval(h->worker, &ev, &m);
    for (size_t i = 0; i < n; i++) {
        if (correlate_set_rule_standalone(h->set, m[i].rule)) h->standalone++;
        correlate_engine_feed_event(h->eng, m[i].rule, &ev, ev.ts_us, label, on_alert, h);
    }
}

/* A winlog event of `channel` / EventID at BASE + t_s seconds with EventData `data`. */
static void ch_winlog(ch *h, const char *label, double t_s, const char *channel, int event_id, const char *data)
{
    char ts[64], json[4096];
    clock_format_rfc3339(BASE_US + (int64_t)(t_s * 1e6), ts);
    snprintf(json, sizeof json,
             "{\"Event\":{\"System\":{\"Channel\":\"%s\",\"EventID\":%d,\"Computer\":\"ws1\","
             "\"TimeCreated\":{\"#attributes\":{\"SystemTime\":\"%s\"}}},\"EventData\":{%s}}}",
             channel, event_id, ts, data);
    ch_json(h, label, json);
}

static void sec(ch *h, const char *label, double t_s, int event_id, const char *data)
{
    ch_winlog(h, label, t_s, "Security", event_id, data);
}

/* Sysmon process creation of C:\<image>.exe */
static void proc(ch *h, const char *label, double t_s, const char *image, const char *more)
{
    char data[1024];
    snprintf(data, sizeof data, "\"Image\":\"C:\\\\%s.exe\"%s%s", image, more[0] ? "," : "", more);
    ch_winlog(h, label, t_s, "Microsoft-Windows-Sysmon/Operational", 1, data);
}

static int alerts_emitted(const ch *h)
{
    int n = 0;
    for (int i = 0; i < h->count; i++) n += h->alerts[i].emit;
    return n;
}

static const got *last_emitted(const ch *h)
{
    for (int i = h->count - 1; i >= 0; i--)
        if (h->alerts[i].emit) return &h->alerts[i];
    fail_msg("no alert");
    return NULL;
}

static correlate_stats stats_of(const ch *h)
{
    correlate_stats s;
    correlate_engine_stats(h->eng, SIZE_MAX, &s);
    return s;
}

/* ---- base rules ---------------------------------------------------------------------------------- */

#define FAILED_LOGIN                                                                                                  \
    "title: Single failed login\nid: 5638f7c0-ac70-491d-8465-2a65075e0d86\nname: failed_login\n"                     \
    "logsource:\n    product: windows\n    service: security\n"                                                    \
    "detection:\n    selection:\n        EventID:\n            - 529\n            - 4625\n    condition: selection\n"

#define PROC_RULE(name, image)                                                                                        \
    "title: " name "\nname: " name "\nlogsource:\n    category: process_creation\n    product: windows\n"            \
    "detection:\n    sel:\n        Image|endswith: '\\" image ".exe'\n    condition: sel\n"

/* ---- the specification's examples --------------------------------------------------------------- */

static const char *EVENT_COUNT_YAML =
    "title: Many failed logins\nid: 0e95725d-7320-415d-80f7-004da920fc11\ncorrelation:\n    type: event_count\n"
    "    rules:\n        - 5638f7c0-ac70-491d-8465-2a65075e0d86\n    group-by:\n        - ComputerName\n"
    "    timespan: 1h\n    condition:\n        gte: 100\n---\n" FAILED_LOGIN;

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

#define RECON_RULES PROC_RULE("recon_cmd_a", "a") "---\n" PROC_RULE("recon_cmd_b", "b") "---\n" PROC_RULE("recon_cmd_c", "c")

static const char *TEMPORAL_YAML = "title: Recon\ncorrelation:\n    type: temporal\n    rules:\n        - recon_cmd_a\n"
                                   "        - recon_cmd_b\n        - recon_cmd_c\n    group-by:\n        - ComputerName\n"
                                   "        - User\n    timespan: 5m\n---\n" RECON_RULES;
static const char *TEMPORAL_ORDERED_YAML =
    "title: Recon ordered\ncorrelation:\n    type: temporal_ordered\n    rules:\n        - recon_cmd_a\n"
    "        - recon_cmd_b\n        - recon_cmd_c\n    group-by:\n        - ComputerName\n        - User\n"
    "    timespan: 5m\n---\n" RECON_RULES;

static void recon(ch *h, const char *order, const double *times, const char *user)
{
    for (size_t i = 0; order[i]; i++) {
        char label[32], image[2] = {order[i], 0}, more[128];
        snprintf(label, sizeof label, "%c%zu", order[i], i);
        snprintf(more, sizeof more, "\"User\":\"%s\"", user ? user : "bob");
        proc(h, label, times[i], image, more);
    }
}

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

static void test_spec_value_sum(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: Possible Exfiltration to Website\ncorrelation:\n    type: value_sum\n    rules:\n"
                "        - website_access\n    group-by:\n        - SourceIP\n        - User\n    timespan: 1h\n"
                "    condition:\n        field: bytes_sent\n        gt: 1000000\n---\n" WEB_RULE);
    web(&h, "w0", 0, "10.0.0.1", "bob", "bytes_sent", "600000");
    web(&h, "w1", 60, "10.0.0.1", "bob", "bytes_sent", "\"400001\""); /* numeric strings count */
    assert_int_equal(h.count, 1);
    assert_true(h.alerts[0].value == 1000001);
    assert_string_equal(h.alerts[0].group, "10.0.0.1|bob");
    /* exactly the limit is not greater */
    ch_engine(&h);
    web(&h, "w0", 0, "10.0.0.1", "bob", "bytes_sent", "600000");
    web(&h, "w1", 60, "10.0.0.1", "bob", "bytes_sent", "400000");
    assert_int_equal(h.count, 0);
    /* outside the span */
    ch_engine(&h);
    web(&h, "w0", 0, "10.0.0.1", "bob", "bytes_sent", "600000");
    web(&h, "w1", 3601, "10.0.0.1", "bob", "bytes_sent", "400001");
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
    ch_engine(&h);
    web(&h, "w0", 0, "10.0.0.1", "bob", "BytesOut", "400");
    web(&h, "w1", 60, "10.0.0.1", "bob", "BytesOut", "600");
    assert_int_equal(h.count, 0);
    /* the low value left the 24 h window: 600 alone averages over 500 */
    ch_engine(&h);
    web(&h, "w0", 0, "10.0.0.1", "bob", "BytesOut", "400");
    web(&h, "w1", 86401, "10.0.0.1", "bob", "BytesOut", "600");
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
static const char *CHAIN_YAML =
    "title: Correlation - Multiple Failed Logins Followed by Successful Login\n"
    "id: b180ead8-d58f-40b2-ae54-c8940995b9b6\nstatus: experimental\n"
    "description: Detects multiple failed logins by a single user followed by a successful login of that user\n"
    "references:\n    - https://reference.com\nauthor: Florian Roth (Nextron Systems)\ndate: 2023-06-16\n"
    "correlation:\n    type: temporal_ordered\n    rules:\n        - multiple_failed_login\n        - successful_login\n"
    "    group-by:\n        - User\n    timespan: 10m\nfalsepositives:\n    - Unlikely\nlevel: high\n---\n"
    "title: Multiple failed logons\nid: a8418a5a-5fc4-46b5-b23b-6c73beb19d41\n"
    "description: Detects multiple failed logins within a certain amount of time\nname: multiple_failed_login\n"
    "correlation:\n    type: event_count\n    rules:\n        - failed_login\n    group-by:\n        - User\n"
    "    timespan: 10m\n    condition:\n        gte: 10\n---\n"
    "title: Single failed login\nid: 53ba33fd-3a50-4468-a5ef-c583635cfa92\nname: failed_login\n"
    "logsource:\n    product: windows\n    service: security\ndetection:\n    selection:\n        EventID:\n"
    "            - 529\n            - 4625\n    condition: selection\n---\n"
    "title: Successful login\nid: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8\ndescription: Detects a successful login\n"
    "name: successful_login\nlogsource:\n    product: windows\n    service: security\ndetection:\n    selection:\n"
    "        EventID:\n            - 528\n            - 4624\n    condition: selection\n";

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
    correlate_options opt;
    correlate_options_default(&opt);
    opt.lateness_us = 60 * 1000000LL;
    ch h;
    ch_init_opt(&h, TEMPORAL_ORDERED_YAML, &opt);
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
    correlate_options opt;
    correlate_options_default(&opt);
    opt.lateness_us = 60 * 1000000LL;
    ch h;
    ch_init_opt(&h, TEMPORAL_ORDERED_YAML, &opt);
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

/* ---- the loader ----------------------------------------------------------------------------------- */

static const detect_problem *one_problem(detect_loader **lp, detect_ruleset **rsp, correlate_set **sp, const char *yaml)
{
    detect_options opt;
    detect_options_default(&opt);
    opt.correlations = true;
    *lp = detect_loader_create(&opt);
    detect_loader_add_text(*lp, "bad.yml", yaml, strlen(yaml));
    char err[256];
    assert_int_equal(detect_loader_build(*lp, rsp, err, sizeof err), 0);
    assert_int_equal(correlate_set_build(*lp, *rsp, sp), 0);
    const detect_report *r = detect_loader_report(*lp);
    if (r->problem_count != 1) harness_print_problems(r);
    assert_int_equal(r->problem_count, 1);
    assert_int_equal(r->rejected, 1);
    return &r->problems[0];
}

static void expect_rejection(const char *yaml, uint32_t line, const char *needle)
{
    detect_loader *l;
    detect_ruleset *rs;
    correlate_set *s;
    const detect_problem *p = one_problem(&l, &rs, &s, yaml);
    if (p->line != line || !strstr(p->message, needle))
        fprintf(stderr, "got line %u: %s (want line %u: ...%s...)\n", p->line, p->message, line, needle);
    assert_int_equal(p->reason, DETECT_REASON_CORRELATION);
    assert_string_equal(detect_reason_name(p->reason), "invalid correlation");
    assert_string_equal(p->file, "bad.yml");
    assert_int_equal(p->line, line);
    assert_non_null(strstr(p->message, needle));
    correlate_set_destroy(s);
    detect_ruleset_unref(rs);
    detect_loader_destroy(l);
}

#define CORR_HEAD "title: c\nid: c1\ncorrelation:\n" /* lines 1-3 */

static void test_loader_rejections(void **state)
{
    (void)state;
    expect_rejection(CORR_HEAD "    type: event_sum\n    rules: [failed_login]\n    timespan: 1h\n---\n" FAILED_LOGIN, 4,
                     "unknown correlation type 'event_sum'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    group-by: [User]\n"
                               "    timespan: 1w\n    condition:\n        gte: 3\n---\n" FAILED_LOGIN,
                     7, "timespan '1w'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n---\n" FAILED_LOGIN, 1,
                     "has no 'condition'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        lt: 5\n---\n" FAILED_LOGIN,
                     8, "needs a lower bound");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: 5\n        most: 3\n---\n" FAILED_LOGIN,
                     9, "unknown condition operator 'most'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: many\n---\n" FAILED_LOGIN,
                     8, "must be a number");
    expect_rejection(CORR_HEAD "    type: value_sum\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: 5\n---\n" FAILED_LOGIN,
                     8, "needs 'field'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: 5\n        field: User\n---\n" FAILED_LOGIN,
                     9, "'field' is only for");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules:\n        - failed_login\n        - nowhere\n"
                               "    timespan: 5m\n---\n" FAILED_LOGIN,
                     7, "references 'nowhere'");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules: [failed_login]\n    group-by: [ip]\n    timespan: 5m\n"
                               "    aliases:\n        host:\n            failed_login: Computer\n---\n" FAILED_LOGIN,
                     9, "alias 'host' is not in 'group-by'");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: 2\n---\n" FAILED_LOGIN,
                     8, "cannot hold");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules: [failed_login, failed_login]\n    timespan: 5m\n---\n" FAILED_LOGIN,
                     5, "lists 'failed_login' twice");
    expect_rejection("title: c\nid: 5638f7c0-ac70-491d-8465-2a65075e0d86\ncorrelation:\n    type: temporal\n"
                     "    rules: [failed_login]\n    timespan: 5m\n---\n" FAILED_LOGIN,
                     1, "already the id of rule");
    expect_rejection("title: c\nname: failed_login\ncorrelation:\n    type: temporal\n    rules: [5638f7c0-ac70-491d-8465-2a65075e0d86]\n"
                     "    timespan: 5m\n---\n" FAILED_LOGIN,
                     1, "already the name of rule");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules: [failed_login]\n    timespan: 5m\ngenerate: maybe\n---\n" FAILED_LOGIN,
                     7, "'generate' must be true or false");
    /* a loop: both members rejected, each naming where */
    {
        detect_options opt;
        detect_options_default(&opt);
        opt.correlations = true;
        detect_loader *l = detect_loader_create(&opt);
        const char *yaml = "title: a\nname: ca\ncorrelation:\n    type: temporal\n    rules: [cb, failed_login]\n"
                           "    timespan: 5m\n---\n"
                           "title: b\nname: cb\ncorrelation:\n    type: temporal\n    rules: [ca]\n    timespan: 5m\n---\n"
                           "title: d\nname: cd\ncorrelation:\n    type: temporal\n    rules: [cb]\n    timespan: 5m\n---\n"
                           "title: e\nname: ce\ncorrelation:\n    type: temporal\n    rules: [failed_login]\n"
                           "    timespan: 5m\n---\n" FAILED_LOGIN;
        detect_loader_add_text(l, "loop.yml", yaml, strlen(yaml));
        detect_ruleset *rs;
        correlate_set *s;
        char err[128];
        assert_int_equal(detect_loader_build(l, &rs, err, sizeof err), 0);
        assert_int_equal(correlate_set_build(l, rs, &s), 0);
        const detect_report *r = detect_loader_report(l);
        assert_int_equal(r->by_reason[DETECT_REASON_CORRELATION], 3);
        assert_int_equal(r->correlations, 1);
        assert_int_equal(correlate_set_count(s), 1);
        assert_string_equal(correlate_set_rule(s, 0)->info.title, "e");
        bool loop = false;
        for (size_t i = 0; i < r->problem_count; i++) {
            assert_true(r->problems[i].line > 0);
            loop |= strstr(r->problems[i].message, "loops back") != NULL;
        }
        assert_true(loop);
        correlate_set_destroy(s);
        detect_ruleset_unref(rs);
        detect_loader_destroy(l);
    }
    /* without the option, correlation documents are skipped as before */
    {
        harness h;
        harness_init(&h, EVENT_COUNT_YAML);
        assert_int_equal(harness_report(&h)->by_reason[DETECT_REASON_SKIP_CORRELATION], 1);
        harness_fini(&h);
    }
}

static void test_loader_attributes(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: Brute force\nid: c1\nname: bf\nstatus: test\nlevel: high\ntags:\n    - attack.credential-access\n"
                "    - attack.t1110.001\ncorrelation:\n    type: value_count\n    rules: failed_login\n"
                "    group-by: Computer\n    timespan: 90m\n    condition:\n        field: [User, IpAddress]\n"
                "        gt: 5\n        lte: 200\n---\n" FAILED_LOGIN);
    const correlate_rule *r = correlate_set_rule(h.set, 0);
    assert_int_equal(r->type, CORRELATE_VALUE_COUNT);
    assert_string_equal(correlate_type_name(r->type), "value_count");
    assert_int_equal(r->timespan_us, 90 * 60 * 1000000LL);
    assert_int_equal(r->group_count, 1);
    assert_string_equal(r->group_by[0], "Computer");
    assert_int_equal(r->field_count, 2);
    assert_string_equal(r->info.level_name, "high");
    assert_int_equal(r->info.attack_count, 1);
    assert_string_equal(r->info.attack_ids[0], "T1110.001");
    assert_int_equal(r->info.line, 1);
    assert_string_equal(r->info.file, "corr.yml");
    /* pairs (User, IpAddress): six distinct pairs from three users */
    const char *pairs[] = {"\"User\":\"a\",\"IpAddress\":\"1.1.1.1\"", "\"User\":\"a\",\"IpAddress\":\"1.1.1.2\"",
                           "\"User\":\"b\",\"IpAddress\":\"1.1.1.1\"", "\"User\":\"b\",\"IpAddress\":\"1.1.1.1\"",
                           "\"User\":\"b\",\"IpAddress\":\"1.1.1.2\"", "\"User\":\"c\",\"IpAddress\":\"1.1.1.1\"",
                           "\"User\":\"c\",\"IpAddress\":\"1.1.1.3\""};
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(pairs); i++) sec(&h, "x", (double)i, 4625, pairs[i]);
    assert_int_equal(h.count, 1);
    assert_true(h.alerts[0].value == 6);
    assert_string_equal(h.alerts[0].group, "ws1"); /* Computer: the System alias */
    ch_fini(&h);
}

/* ---- alerts, state ---------------------------------------------------------------------------------- */

static void test_alert_identity_and_json(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, TEMPORAL_ORDERED_YAML);
    const double t[] = {0, 10, 20};
    recon(&h, "abc", t, NULL);
    char first[33];
    assert_int_equal(h.count, 1);
    memcpy(first, h.alerts[0].id, 33);
    assert_int_equal(strlen(first), 32);
    ch_engine(&h);
    recon(&h, "abc", t, NULL);
    assert_string_equal(h.alerts[0].id, first); /* same correlation, key, first event */
    ch_engine(&h);
    recon(&h, "abc", t, "alice");
    assert_string_not_equal(h.alerts[0].id, first);

    /* the JSON shape */
    const char *ids[] = {"e1", "e2"};
    const char *values[] = {"ws1", "bob"};
    correlate_alert a = {.rule = correlate_set_rule(h.set, 0),
                         .group_values = values,
                         .event_ids = ids,
                         .event_count = 2,
                         .first_us = BASE_US,
                         .last_us = BASE_US + 1500000,
                         .value = 3,
                         .group_key = "k",
                         .group_key_len = 1};
    buf b;
    buf_init(&b);
    correlate_alert_write_json(&b, &a);
    char id[33];
    correlate_alert_id(&a, id);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"id\":\"%s\",\"type\":\"temporal_ordered\",\"timespan\":\"5m\",\"group\":{\"ComputerName\":\"ws1\","
             "\"User\":\"bob\"},\"window\":{\"first\":\"2024-05-01T12:00:00.000000Z\",\"last\":"
             "\"2024-05-01T12:00:01.500000Z\"},\"value\":3,\"event_count\":2,\"events\":[\"e1\",\"e2\"]}",
             id);
    assert_string_equal(buf_cstr(&b), want);
    buf_fini(&b);
    ch_fini(&h);
}

static void test_state_round_trip(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, CHAIN_YAML);
    /* half a sequence: 10 failures for bob (the inner alert fed the outer state), 3 for alice */
    for (int i = 0; i < 10; i++) sec(&h, "fb", i, 4625, "\"User\":\"bob\"");
    for (int i = 0; i < 3; i++) sec(&h, "fa", i, 4625, "\"User\":\"alice\"");
    assert_int_equal(alerts_emitted(&h), 0);
    buf enc[2];
    for (size_t c = 0; c < 2; c++) {
        buf_init(&enc[c]);
        correlate_state_encode(h.eng, c, &enc[c]);
    }
    int64_t wm = correlate_engine_watermark(h.eng);

    /* a fresh engine (a restart) resumes from the bytes */
    ch_engine(&h);
    for (size_t c = 0; c < 2; c++) assert_int_equal(correlate_state_decode(h.eng, c, enc[c].data, enc[c].len), 0);
    assert_int_equal(correlate_engine_watermark(h.eng), wm);
    buf again;
    buf_init(&again);
    for (size_t c = 0; c < 2; c++) {
        buf_clear(&again);
        correlate_state_encode(h.eng, c, &again);
        assert_int_equal(again.len, enc[c].len);
        assert_memory_equal(again.data, enc[c].data, again.len);
    }
    sec(&h, "ok", 20, 4624, "\"User\":\"bob\"");
    assert_int_equal(alerts_emitted(&h), 1);
    assert_string_equal(last_emitted(&h)->ids, "fb,ok"); /* same label for every failure: listed once */
    for (int i = 0; i < 7; i++) sec(&h, "fa2", 21 + i, 4625, "\"User\":\"alice\"");
    sec(&h, "ok2", 30, 4624, "\"User\":\"alice\"");
    assert_int_equal(alerts_emitted(&h), 2);
    assert_string_equal(last_emitted(&h)->ids, "fa,fa2,ok2");

    /* malformed: every truncation, a flipped version, another correlation's state */
    for (size_t c = 0; c < 2; c++) {
        for (size_t n = 0; n < enc[c].len; n++) assert_int_equal(correlate_state_decode(h.eng, c, enc[c].data, n), -EINVAL);
        correlate_stats s;
        correlate_engine_stats(h.eng, c, &s);
        assert_int_equal(s.keys, 0); /* a rejected state leaves nothing behind */
    }
    assert_int_equal(correlate_state_decode(h.eng, 0, enc[1].data, enc[1].len), -EINVAL);
    enc[0].data[4] = 9;
    assert_int_equal(correlate_state_decode(h.eng, 0, enc[0].data, enc[0].len), -EINVAL);
    enc[0].data[4] = CORRELATE_STATE_VERSION;
    enc[0].data[enc[0].len - 1] = 'x'; /* the last data string loses its NUL */
    assert_int_equal(correlate_state_decode(h.eng, 0, enc[0].data, enc[0].len), -EINVAL);

    /* decoding into an engine with smaller bounds evicts, counted */
    correlate_options small;
    correlate_options_default(&small);
    small.keys_max = 1;
    correlate_engine *e2 = correlate_engine_create(h.set, &small);
    buf_clear(&again);
    correlate_engine_destroy(h.eng);
    h.eng = correlate_engine_create(h.set, NULL);
    sec(&h, "x1", 0, 4625, "\"User\":\"u1\"");
    sec(&h, "x2", 1, 4625, "\"User\":\"u2\"");
    size_t inner = strcmp(correlate_set_rule(h.set, 0)->info.title, "Multiple failed logons") == 0 ? 0 : 1;
    correlate_state_encode(h.eng, inner, &again);
    assert_int_equal(correlate_state_decode(e2, inner, again.data, again.len), 0);
    correlate_stats s;
    correlate_engine_stats(e2, inner, &s);
    assert_int_equal(s.keys, 1);
    assert_int_equal(s.evicted_keys, 1);
    correlate_engine_destroy(e2);
    buf_fini(&again);
    for (size_t c = 0; c < 2; c++) buf_fini(&enc[c]);
    ch_fini(&h);
}

/* A restart: the state written by one process is read by a new one that loaded the same
 * rules again (another set, another engine), and the half-seen sequence completes once. */
static void test_state_survives_reload(void **state)
{
    (void)state;
    ch before, after;
    ch_init(&before, TEMPORAL_ORDERED_YAML);
    const double t[] = {0, 10};
    recon(&before, "ab", t, NULL);
    assert_int_equal(before.count, 0);
    buf enc;
    buf_init(&enc);
    correlate_state_encode(before.eng, 0, &enc);
    ch_fini(&before);

    ch_init(&after, TEMPORAL_ORDERED_YAML);
    assert_int_equal(correlate_state_decode(after.eng, 0, enc.data, enc.len), 0);
    const double t2[] = {20};
    recon(&after, "c", t2, NULL);
    assert_int_equal(after.count, 1);
    assert_string_equal(after.alerts[0].ids, "a0,b1,c0");
    recon(&after, "c", t2, NULL); /* consumed: no second alert */
    assert_int_equal(after.count, 1);
    /* the state does not fit a correlation of another type under the same title */
    ch other;
    ch_init(&other, "title: Recon ordered\ncorrelation:\n    type: temporal\n    rules:\n        - recon_cmd_a\n"
                    "        - recon_cmd_b\n        - recon_cmd_c\n    group-by:\n        - ComputerName\n"
                    "        - User\n    timespan: 5m\n---\n" RECON_RULES);
    assert_int_equal(correlate_state_decode(other.eng, 0, enc.data, enc.len), -EINVAL);
    ch_fini(&other);
    buf_fini(&enc);
    ch_fini(&after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_event_count),
        cmocka_unit_test(test_spec_event_count_ecs),
        cmocka_unit_test(test_spec_value_count),
        cmocka_unit_test(test_spec_temporal),
        cmocka_unit_test(test_spec_temporal_ordered),
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
        cmocka_unit_test(test_loader_rejections),
        cmocka_unit_test(test_loader_attributes),
        cmocka_unit_test(test_alert_identity_and_json),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_survives_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
