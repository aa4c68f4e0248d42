/* tests/unit/detect/helpers.h — shared by the detect unit tests: build a rule set from YAML
 * text, normalize a JSON event (as ingest would), and count which rules fire. Everything is
 * torn down by the test; failures print the loader's problems so a red test says why. */
#ifndef MAMORI_TESTS_DETECT_HELPERS_H
#define MAMORI_TESTS_DETECT_HELPERS_H

#include "core/arena.h"
#include "core/event.h"
#include "core/json.h"
#include "detect/detect.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* xorshift64 step of *state, reduced below n: each test file's own reproducible stream. */
static inline uint32_t xorshift_below(uint64_t *state, uint32_t n)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (uint32_t)(*state % n);
}

typedef struct harness {
    detect_loader *loader;
    detect_ruleset *rs;
    detect_worker *worker;
    json_parser *parser;
    normalizer *norm;
    arena mem;
} harness;

static inline void harness_print_problems(const detect_report *r)
{
    for (size_t i = 0; i < r->problem_count; i++)
        fprintf(stderr, "  problem %s:%u: %s: %s\n", r->problems[i].file, r->problems[i].line,
                detect_reason_name(r->problems[i].reason), r->problems[i].message);
}

/* Loads `yaml` (as file "test.yml") with opt (NULL = defaults) and builds. */
static inline void harness_init_opt(harness *h, const char *yaml, const detect_options *opt)
{
    memset(h, 0, sizeof *h);
    h->loader = detect_loader_create(opt);
    detect_loader_add_text(h->loader, "test.yml", yaml, strlen(yaml));
    char err[256];
    int rc = detect_loader_build(h->loader, &h->rs, err, sizeof err);
    if (rc) fprintf(stderr, "build failed: %s\n", err);
    assert_int_equal(rc, 0);
    h->worker = detect_worker_create();
    assert_int_equal(detect_worker_bind(h->worker, h->rs), 0);
    h->parser = json_parser_create();
    h->norm = normalizer_create();
    arena_init(&h->mem, 64 * 1024);
}

static inline void harness_init(harness *h, const char *yaml) { harness_init_opt(h, yaml, NULL); }

static inline void harness_fini(harness *h)
{
    arena_fini(&h->mem);
    normalizer_destroy(h->norm);
    json_parser_destroy(h->parser);
    detect_worker_destroy(h->worker);
    detect_ruleset_unref(h->rs);
    detect_loader_destroy(h->loader);
}

static inline const detect_report *harness_report(const harness *h) { return detect_loader_report(h->loader); }

/* Every rule the test loaded must have loaded. */
static inline void harness_expect_loaded(const harness *h, uint32_t n)
{
    const detect_report *r = harness_report(h);
    if (r->loaded != n || r->rejected) harness_print_problems(r);
    assert_int_equal(r->loaded, n);
    assert_int_equal(r->rejected, 0);
}

/* Normalizes `json` (format auto) and returns the number of rules that fired; the ids of
 * the first ones go to ids (if not NULL). */
static inline size_t harness_eval(harness *h, const char *json, const char **ids, size_t max_ids)
{
    arena_reset(&h->mem);
    json_value v;
    json_error jerr;
    assert_int_equal(json_parse(h->parser, &h->mem, json, strlen(json), &v, &jerr), 0);
    event_stamp stamp = {.tenant = "t", .agent_id = "a", .agent_hash = 1, .seq = 1, .received_us = 1714566896000000LL};
    mamori_event ev;
    char why[128];
    int rc = normalize_event(h->norm, &h->mem, EVENT_FORMAT_AUTO, &v, &stamp, 0, &ev, why, sizeof why);
    if (rc) fprintf(stderr, "normalize: %s\n", why);
    assert_int_equal(rc, 0);
    const detect_match *m;
    size_t n = detect_eval(h->worker, &ev, &m);
    for (size_t i = 0; ids && i < n && i < max_ids; i++) ids[i] = m[i].rule->id;
    return n;
}

static inline bool harness_fires(harness *h, const char *json) { return harness_eval(h, json, NULL, 0) > 0; }

/* One rule, one event: does `detection` (YAML lines under `detection:`, indented by 4)
 * fire on a Sysmon process-creation event whose EventData is `event_data` (a JSON object
 * body, e.g. "\"CommandLine\":\"x\"")? */
static inline bool sysmon1_fires(const char *detection, const char *event_data)
{
    char yaml[8192], json[8192];
    snprintf(yaml, sizeof yaml,
             "title: t\nid: r1\nlogsource:\n    category: process_creation\n    product: windows\ndetection:\n%s", detection);
    snprintf(json, sizeof json,
             "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"
             "\"Computer\":\"ws1\",\"TimeCreated\":{\"#attributes\":{\"SystemTime\":\"2024-05-01T12:00:00Z\"}}},"
             "\"EventData\":{%s}}}",
             event_data);
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 1);
    bool fired = harness_fires(&h, json);
    harness_fini(&h);
    return fired;
}

/* Loads `yaml` and returns the single problem's reason and line (asserts there is one). */
static inline const detect_problem *expect_one_problem(harness *h, const char *yaml)
{
    memset(h, 0, sizeof *h);
    h->loader = detect_loader_create(NULL);
    detect_loader_add_text(h->loader, "bad.yml", yaml, strlen(yaml));
    char err[256];
    assert_int_equal(detect_loader_build(h->loader, &h->rs, err, sizeof err), 0);
    const detect_report *r = detect_loader_report(h->loader);
    if (r->problem_count != 1) harness_print_problems(r);
    assert_int_equal(r->problem_count, 1);
    return &r->problems[0];
}

static inline void problem_fini(harness *h)
{
    detect_ruleset_unref(h->rs);
    detect_loader_destroy(h->loader);
}

#endif
