/* tests/unit/detect/correlate_helpers.h — shared by the correlation tests (test_correlate.c,
 * test_correlate_load.c): a harness that loads correlation YAML, feeds events through the real
 * normalizer and detect_eval into a correlate_engine and records the alerts, plus the base
 * rules and specification examples both files use. */
#ifndef MAMORI_TESTS_DETECT_CORRELATE_HELPERS_H
#define MAMORI_TESTS_DETECT_CORRELATE_HELPERS_H

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
    int64_t received_us; /* when set, every match fed is given this receive time */
} ch;

static inline void on_alert(void *ctx, const correlate_alert *a)
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

static inline void ch_engine(ch *h)
{
    correlate_engine_destroy(h->eng);
    h->eng = correlate_engine_create(h->set, &h->opt);
    h->count = 0;
    h->standalone = 0;
}

static inline void ch_init_opt(ch *h, const char *yaml, const correlate_options *copt)
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

static inline void ch_init(ch *h, const char *yaml) { ch_init_opt(h, yaml, NULL); }

/* Default bounds and a lateness allowance of lateness_s seconds. */
static inline void ch_init_lateness(ch *h, const char *yaml, int lateness_s)
{
    correlate_options opt;
    correlate_options_default(&opt);
    opt.lateness_us = lateness_s * 1000000LL;
    ch_init_opt(h, yaml, &opt);
}

static inline void ch_fini(ch *h)
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
static inline void ch_json(ch *h, const char *label, const char *json)
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
        correlate_match *cm = correlate_match_create(h->set, m[i].rule, &ev, ev.ts_us, label);
        if (cm && h->received_us) correlate_match_set_received(cm, h->received_us);
        correlate_engine_feed(h->eng, cm, on_alert, h);
        correlate_match_destroy(cm);
    }
}

/* A winlog event of `channel` / EventID at BASE + t_s seconds with EventData `data`. */
static inline void ch_winlog(ch *h, const char *label, double t_s, const char *channel, int event_id, const char *data)
{
    char ts[64], json[4096];
    clock_format_rfc3339(BASE_US + (int64_t)(t_s * 1e6), ts);
    snprintf(json, sizeof json,
             "{\"Event\":{\"System\":{\"Channel\":\"%s\",\"EventID\":%d,\"Computer\":\"ws1\","
             "\"TimeCreated\":{\"#attributes\":{\"SystemTime\":\"%s\"}}},\"EventData\":{%s}}}",
             channel, event_id, ts, data);
    ch_json(h, label, json);
}

static inline void sec(ch *h, const char *label, double t_s, int event_id, const char *data)
{
    ch_winlog(h, label, t_s, "Security", event_id, data);
}

/* Sysmon process creation of C:\<image>.exe */
static inline void proc(ch *h, const char *label, double t_s, const char *image, const char *more)
{
    char data[1024];
    snprintf(data, sizeof data, "\"Image\":\"C:\\\\%s.exe\"%s%s", image, more[0] ? "," : "", more);
    ch_winlog(h, label, t_s, "Microsoft-Windows-Sysmon/Operational", 1, data);
}

static inline int alerts_emitted(const ch *h)
{
    int n = 0;
    for (int i = 0; i < h->count; i++) n += h->alerts[i].emit;
    return n;
}

static inline const got *last_emitted(const ch *h)
{
    for (int i = h->count - 1; i >= 0; i--)
        if (h->alerts[i].emit) return &h->alerts[i];
    fail_msg("no alert");
    return NULL;
}

static inline correlate_stats stats_of(const ch *h)
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

#define RECON_RULES PROC_RULE("recon_cmd_a", "a") "---\n" PROC_RULE("recon_cmd_b", "b") "---\n" PROC_RULE("recon_cmd_c", "c")

#define EVENT_COUNT_YAML \
    "title: Many failed logins\nid: 0e95725d-7320-415d-80f7-004da920fc11\ncorrelation:\n    type: event_count\n" \
    "    rules:\n        - 5638f7c0-ac70-491d-8465-2a65075e0d86\n    group-by:\n        - ComputerName\n" \
    "    timespan: 1h\n    condition:\n        gte: 100\n---\n" FAILED_LOGIN

#define TEMPORAL_ORDERED_YAML \
    "title: Recon ordered\ncorrelation:\n    type: temporal_ordered\n    rules:\n        - recon_cmd_a\n" \
    "        - recon_cmd_b\n        - recon_cmd_c\n    group-by:\n        - ComputerName\n        - User\n" \
    "    timespan: 5m\n---\n" RECON_RULES

#define CHAIN_YAML \
    "title: Correlation - Multiple Failed Logins Followed by Successful Login\n" \
    "id: b180ead8-d58f-40b2-ae54-c8940995b9b6\nstatus: experimental\n" \
    "description: Detects multiple failed logins by a single user followed by a successful login of that user\n" \
    "references:\n    - https://reference.com\nauthor: Florian Roth (Nextron Systems)\ndate: 2023-06-16\n" \
    "correlation:\n    type: temporal_ordered\n    rules:\n        - multiple_failed_login\n        - successful_login\n" \
    "    group-by:\n        - User\n    timespan: 10m\nfalsepositives:\n    - Unlikely\nlevel: high\n---\n" \
    "title: Multiple failed logons\nid: a8418a5a-5fc4-46b5-b23b-6c73beb19d41\n" \
    "description: Detects multiple failed logins within a certain amount of time\nname: multiple_failed_login\n" \
    "correlation:\n    type: event_count\n    rules:\n        - failed_login\n    group-by:\n        - User\n" \
    "    timespan: 10m\n    condition:\n        gte: 10\n---\n" \
    "title: Single failed login\nid: 53ba33fd-3a50-4468-a5ef-c583635cfa92\nname: failed_login\n" \
    "logsource:\n    product: windows\n    service: security\ndetection:\n    selection:\n        EventID:\n" \
    "            - 529\n            - 4625\n    condition: selection\n---\n" \
    "title: Successful login\nid: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8\ndescription: Detects a successful login\n" \
    "name: successful_login\nlogsource:\n    product: windows\n    service: security\ndetection:\n    selection:\n" \
    "        EventID:\n            - 528\n            - 4624\n    condition: selection\n"

static inline void recon(ch *h, const char *order, const double *times, const char *user)
{
    for (size_t i = 0; order[i]; i++) {
        char label[32], image[2] = {order[i], 0}, more[128];
        snprintf(label, sizeof label, "%c%zu", order[i], i);
        snprintf(more, sizeof more, "\"User\":\"%s\"", user ? user : "bob");
        proc(h, label, times[i], image, more);
    }
}

#endif
