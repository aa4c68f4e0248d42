/* bench/micro/json_bench.c — why Mamori parses JSON itself: throughput of core/json.c
 * against json-c (when built with MAMORI_HAVE_JSONC) on (a) a ~516-byte synthetic ECS
 * process event and (b) real OTRF NXLog lines read from the zips in MAMORI_DATA_DIR, each
 * also with six field lookups after the parse. Median of 5 runs; numbers go to docs/json.md.
 * Usage: bench_json_bench [events] */
#include "core/arena.h"
#include "core/json.h"
#include "otrf_lines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef MAMORI_HAVE_JSONC
/* json-c's headers cannot share a translation unit with core/json.h (both define
 * enum json_type and json_object_get), so the six functions used here are declared by
 * hand, as json-c >= 0.13 exports them. */
struct json_tokener;
struct json_object;
extern struct json_tokener *json_tokener_new(void);
extern void json_tokener_free(struct json_tokener *tok);
extern void json_tokener_reset(struct json_tokener *tok);
extern struct json_object *json_tokener_parse_ex(struct json_tokener *tok, const char *str, int len);
extern int json_object_object_get_ex(const struct json_object *obj, const char *key, struct json_object **value);
extern int json_object_put(struct json_object *obj);
#endif

#define RUNS 5
#define BATCH_EVENTS 256 /* arena reset cadence, like an ingest batch */

/* A process-start event as an agent would send it: 516 bytes. */
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

static double median(double *v)
{
    qsort(v, RUNS, sizeof *v, cmp_double);
    return v[RUNS / 2];
}

/* Six lookups an ECS consumer or a winlog consumer does right after parsing. */
static const char *const ecs_lookups[6][2] = {{"process", "name"}, {"process", "pid"}, {"host", "name"},
                                              {"event", "category"}, {"user", "name"}, {"@timestamp", NULL}};
static const char *const nxlog_lookups[6][2] = {{"EventID", NULL},     {"Channel", NULL}, {"Hostname", NULL},
                                                {"Image", NULL},       {"CommandLine", NULL}, {"ProcessId", NULL}};

static volatile size_t sink;

static const json_value *get2(const json_value *root, const char *const key[2])
{
    const json_value *v = json_object_get(root, key[0], strlen(key[0]));
    if (v && key[1]) v = json_object_get(v, key[1], strlen(key[1]));
    return v;
}

static double run_ours(const struct lines *c, const char *const (*lookups)[2])
{
    json_parser *p = json_parser_create();
    arena a;
    arena_init(&a, 256 * 1024);
    double t0 = now_s();
    size_t found = 0;
    for (size_t i = 0; i < c->count; i++) {
        if (i % BATCH_EVENTS == 0) arena_reset(&a);
        json_value v;
        json_error err;
        if (json_parse(p, &a, c->text[i], c->len[i], &v, &err) != 0) continue;
        if (lookups)
            for (int k = 0; k < 6; k++) found += get2(&v, lookups[k]) != NULL;
    }
    double t = now_s() - t0;
    sink = found;
    arena_fini(&a);
    json_parser_destroy(p);
    return t;
}

#ifdef MAMORI_HAVE_JSONC
static double run_jsonc(const struct lines *c, const char *const (*lookups)[2])
{
    struct json_tokener *tok = json_tokener_new();
    double t0 = now_s();
    size_t found = 0;
    for (size_t i = 0; i < c->count; i++) {
        json_tokener_reset(tok);
        struct json_object *o = json_tokener_parse_ex(tok, c->text[i], (int)c->len[i]);
        if (!o) continue;
        if (lookups) {
            for (int k = 0; k < 6; k++) {
                struct json_object *v = NULL;
                if (json_object_object_get_ex(o, lookups[k][0], &v) && lookups[k][1])
                    if (!json_object_object_get_ex(v, lookups[k][1], &v)) v = NULL;
                found += v != NULL;
            }
        }
        json_object_put(o);
    }
    double t = now_s() - t0;
    sink = found;
    json_tokener_free(tok);
    return t;
}
#endif

static void report(const char *name, const struct lines *c, double (*fn)(const struct lines *, const char *const (*)[2]),
                   const char *const (*lookups)[2])
{
    double secs[RUNS];
    fn(c, lookups); /* warm-up */
    for (int r = 0; r < RUNS; r++) secs[r] = fn(c, lookups);
    double t = median(secs);
    printf("%-44s %10.0f events/s %8.1f MB/s\n", name, (double)c->count / t, (double)c->bytes / t / 1e6);
}

int main(int argc, char **argv)
{
    size_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    struct lines ecs = {0};
    for (size_t i = 0; i < events; i++) lines_add(&ecs, (char *)ecs_event, sizeof ecs_event - 1);
    struct lines otrf = {0};
    bool have_otrf = lines_load_sample(&otrf, events) == 0;

    printf("json_bench: %zu events each, median of %d runs (ECS event %zu bytes", events, RUNS, sizeof ecs_event - 1);
    if (have_otrf) printf(", OTRF %zu lines, %.0f bytes avg", otrf.count, (double)otrf.bytes / (double)otrf.count);
    printf(")\n");
    report("mamori  parse          ecs", &ecs, run_ours, NULL);
    report("mamori  parse+6 lookups ecs", &ecs, run_ours, ecs_lookups);
    if (have_otrf) {
        report("mamori  parse          otrf", &otrf, run_ours, NULL);
        report("mamori  parse+6 lookups otrf", &otrf, run_ours, nxlog_lookups);
    }
#ifdef MAMORI_HAVE_JSONC
    report("json-c  parse          ecs", &ecs, run_jsonc, NULL);
    report("json-c  parse+6 lookups ecs", &ecs, run_jsonc, ecs_lookups);
    if (have_otrf) {
        report("json-c  parse          otrf", &otrf, run_jsonc, NULL);
        report("json-c  parse+6 lookups otrf", &otrf, run_jsonc, nxlog_lookups);
    }
#else
    printf("json-c not available: built without MAMORI_HAVE_JSONC\n");
#endif
    return 0;
}
