/* bench/micro/normalize_bench.c — parse + normalize throughput on one core: a ~516-byte
 * synthetic ECS process event, and real OTRF NXLog winlog lines (zips in MAMORI_DATA_DIR)
 * with format auto. Median of 5 runs. Targets (docs/ecs-mapping.md): ECS >= 1M events/s,
 * OTRF winlog >= 300k events/s in a release build.
 * Usage: bench_normalize_bench [events] [ecs|otrf] */
#include "core/arena.h"
#include "core/event.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zip.h>

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

struct corpus {
    const char **text;
    size_t *len;
    size_t count;
    size_t bytes;
};

static void corpus_add(struct corpus *c, const char *s, size_t len, size_t cap)
{
    if (c->count == cap) return;
    c->text[c->count] = s;
    c->len[c->count] = len;
    c->count++;
    c->bytes += len;
}

static int corpus_load_otrf(struct corpus *c, size_t cap)
{
    static const char *const zips[] = {
        "otrf/windows/lateral_movement/host/covenant_dcom_iertutil_dll_hijack.zip",
        "otrf/windows/lateral_movement/host/empire_psexec_dcerpc_tcp_svcctl.zip",
        "otrf/windows/credential_access/host/empire_mimikatz_extract_keys.zip",
        "otrf/windows/credential_access/host/cmd_lsass_memory_dumpert_syscalls.zip",
    };
    c->text = calloc(cap, sizeof *c->text);
    c->len = calloc(cap, sizeof *c->len);
    for (size_t z = 0; z < sizeof zips / sizeof zips[0] && c->count < cap; z++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", MAMORI_DATA_DIR, zips[z]);
        int zerr = 0;
        zip_t *zip = zip_open(path, ZIP_RDONLY, &zerr);
        if (!zip) {
            fprintf(stderr, "skipping %s (zip error %d)\n", path, zerr);
            continue;
        }
        for (zip_int64_t i = 0; i < zip_get_num_entries(zip, 0) && c->count < cap; i++) {
            zip_stat_t st;
            if (zip_stat_index(zip, (zip_uint64_t)i, 0, &st) != 0 || st.size == 0) continue;
            char *data = malloc(st.size + 1);
            zip_file_t *f = zip_fopen_index(zip, (zip_uint64_t)i, 0);
            zip_int64_t got = f ? zip_fread(f, data, st.size) : -1;
            if (f) zip_fclose(f);
            if (got != (zip_int64_t)st.size) {
                free(data);
                continue;
            }
            data[st.size] = '\0';
            for (char *line = data; *line && c->count < cap;) {
                char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                if (len && line[len - 1] == '\r') len--;
                if (len > 1 && line[0] == '{') corpus_add(c, line, len, cap);
                line = nl ? nl + 1 : line + len;
            }
        }
        zip_close(zip);
    }
    return c->count ? 0 : -1;
}

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
static double run(const struct corpus *c, bool normalize, size_t *rejected)
{
    json_parser *p = json_parser_create();
    normalizer *n = normalizer_create();
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
        if (!normalize) continue;
        mamori_event ev;
        char reason[128];
        if (normalize_event(n, &a, EVENT_FORMAT_AUTO, &v, &stamp, (uint32_t)(i % BATCH_EVENTS), &ev, reason,
                            sizeof reason) != 0) {
            bad++;
            continue;
        }
        bytes_out += ev.json_len;
    }
    double t = now_s() - t0;
    sink = bytes_out;
    *rejected = bad;
    arena_fini(&a);
    normalizer_destroy(n);
    json_parser_destroy(p);
    return t;
}

static void report(const char *name, const struct corpus *c, bool normalize)
{
    double secs[RUNS];
    size_t rejected = 0;
    run(c, normalize, &rejected); /* warm-up */
    for (int r = 0; r < RUNS; r++) secs[r] = run(c, normalize, &rejected);
    qsort(secs, RUNS, sizeof secs[0], cmp_double);
    double t = secs[RUNS / 2];
    printf("%-30s %10.0f events/s %8.1f MB/s %9.0f ns/event  (%zu rejected)\n", name, (double)c->count / t,
           (double)c->bytes / t / 1e6, t / (double)c->count * 1e9, rejected);
}

int main(int argc, char **argv)
{
    size_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    const char *only = argc > 2 ? argv[2] : NULL;
    struct corpus ecs = {0};
    ecs.text = calloc(events, sizeof *ecs.text);
    ecs.len = calloc(events, sizeof *ecs.len);
    for (size_t i = 0; i < events; i++) corpus_add(&ecs, ecs_event, sizeof ecs_event - 1, events);
    printf("normalize_bench: median of %d runs, ECS event %zu bytes\n", RUNS, sizeof ecs_event - 1);
    if (!only || strcmp(only, "ecs") == 0) {
        report("parse            ecs", &ecs, false);
        report("parse+normalize  ecs", &ecs, true);
    }
    if (!only || strcmp(only, "otrf") == 0) {
        struct corpus otrf = {0};
        if (corpus_load_otrf(&otrf, events) == 0) {
            printf("OTRF: %zu lines, %.0f bytes avg\n", otrf.count, (double)otrf.bytes / (double)otrf.count);
            report("parse            otrf winlog", &otrf, false);
            report("parse+normalize  otrf winlog", &otrf, true);
        } else {
            printf("OTRF zips not found under %s\n", MAMORI_DATA_DIR);
        }
    }
    return 0;
}
