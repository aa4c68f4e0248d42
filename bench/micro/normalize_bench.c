/* bench/micro/normalize_bench.c — parse + normalize throughput on one core: a ~516-byte
 * synthetic ECS process event, and real OTRF NXLog winlog lines (zips in MAMORI_DATA_DIR)
 * with format auto. Median of 5 runs. "parse+normalize" writes the canonical JSON of every
 * event (as ingest does); "parse+norm deferred" leaves it out (normalizer_set_defer_json, as
 * `mamorictl scan` and the detection benchmark do). Targets (docs/ecs-mapping.md): ECS >= 1M events/s,
 * OTRF winlog >= 300k events/s in a release build.
 * Usage: bench_normalize_bench [events] [ecs|otrf] [parse|eager|deferred] */
#include "core/arena.h"
#include "core/event.h"
#include "core/json.h"
#include "otrf_lines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 5
#define BATCH_EVENTS 256

static const char ecs_event[] =
    "{\"@timestamp\":\"2024-05-01T12:34:56.789012Z\",\"event\":{\"category\":[\"process\"],\"type\":[\"start\"],"
    "\"action\":\"exec\"},\"host\":{\"name\":\"ws-00042.corp.test\",\"os\":{\"type\":\"windows\"}},"
    "\"process\":{\"entity_id\":\"{8f2a6c1e-3b7d-4e59-a1c2-7d3e9f0b1a24}\",\"pid\":4242,\"name\":\"powershell.exe\","
    "\"executable\":\"C:\\\\Windows\\\\System32\\\\WindowsPowerShell\\\\v1.0\\\\powershell.exe\","
    "\"command_line\":\"powershell.exe -nop -w hid -enc SQBFAFgA\",\"parent\":{\"pid\":1234,"
    "\"name\":\"cmd.exe\",\"executable\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\"}},"
    "\"user\":{\"name\":\"alice\"}}";

/* CPU time of this thread: "events/s on one core" even when the machine is shared. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static volatile size_t sink;

/* Returns seconds; *rejected counts parse failures and normalizer rejections. */
enum mode { PARSE_ONLY, NORMALIZE, NORMALIZE_DEFERRED };

static double run(const struct lines *c, enum mode mode, size_t *rejected)
{
    json_parser *p = json_parser_create();
    normalizer *n = normalizer_create();
    normalizer_set_defer_json(n, mode == NORMALIZE_DEFERRED);
    arena a;
    arena_init(&a, 16u << 20); /* holds a whole batch: no chunk churn inside the timing */
    event_stamp stamp = {.tenant = "default", .agent_id = "agent-0001", .agent_hash = 1, .seq = 1,
                         .received_us = 1714566896000000LL};
    size_t bad = 0, bytes_out = 0;
    double t0 = now_s();
    for (size_t i = 0; i < c->count; i++) {
        if (i % BATCH_EVENTS == 0) arena_reset(&a);
        json_value v;
        json_error err;
        if (json_parse(p, &a, c->text[i], c->len[i], &v, &err) != 0) {
            bad++;
            continue;
        }
        if (mode == PARSE_ONLY) continue;
        mamori_event ev;
        char reason[128];
        if (normalize_event(n, &a, EVENT_FORMAT_AUTO, &v, &stamp, (uint32_t)(i % BATCH_EVENTS), &ev, reason,
                            sizeof reason) != 0) {
            bad++;
            continue;
        }
        bytes_out += ev.json_len + ev.field_count;
    }
    double t = now_s() - t0;
    sink = bytes_out;
    *rejected = bad;
    arena_fini(&a);
    normalizer_destroy(n);
    json_parser_destroy(p);
    return t;
}

static const char *only_mode; /* argv[3]: one of the three lines only */

static void report(const char *name, const struct lines *c, enum mode mode)
{
    static const char *const mode_names[] = {"parse", "eager", "deferred"};
    if (only_mode && strcmp(only_mode, mode_names[mode]) != 0) return;
    double secs[RUNS];
    size_t rejected = 0;
    run(c, mode, &rejected); /* warm-up */
    for (int r = 0; r < RUNS; r++) secs[r] = run(c, mode, &rejected);
    qsort(secs, RUNS, sizeof secs[0], cmp_double);
    double t = secs[RUNS / 2];
    printf("%-30s %10.0f events/s %8.1f MB/s %9.0f ns/event  (%zu rejected)\n", name, (double)c->count / t,
           (double)c->bytes / t / 1e6, t / (double)c->count * 1e9, rejected);
}

int main(int argc, char **argv)
{
    size_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    const char *only = argc > 2 ? argv[2] : NULL;
    only_mode = argc > 3 ? argv[3] : NULL;
    struct lines ecs = {0};
    for (size_t i = 0; i < events; i++) lines_add(&ecs, (char *)ecs_event, sizeof ecs_event - 1);
    printf("normalize_bench: median of %d runs, ECS event %zu bytes\n", RUNS, sizeof ecs_event - 1);
    if (!only || strcmp(only, "ecs") == 0) {
        report("parse            ecs", &ecs, PARSE_ONLY);
        report("parse+normalize  ecs", &ecs, NORMALIZE);
        report("parse+norm deferred ecs", &ecs, NORMALIZE_DEFERRED);
    }
    if (!only || strcmp(only, "otrf") == 0) {
        struct lines otrf = {0};
        if (lines_load_sample(&otrf, events) == 0) {
            printf("OTRF: %zu lines, %.0f bytes avg\n", otrf.count, (double)otrf.bytes / (double)otrf.count);
            report("parse            otrf winlog", &otrf, PARSE_ONLY);
            report("parse+normalize  otrf winlog", &otrf, NORMALIZE);
            report("parse+norm deferred otrf winlog", &otrf, NORMALIZE_DEFERRED);
        } else {
            printf("OTRF zips not found under %s\n", MAMORI_DATA_DIR);
        }
    }
    return 0;
}
