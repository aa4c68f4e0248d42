/* bench/micro/detect_bench.c — detection throughput on one core with the whole SigmaHQ rule
 * set: (a) every OTRF recording (zips under MAMORI_DATA_DIR/otrf, NXLog lines, normalized
 * once with format auto, then detect_eval timed alone over all of them: events cold in
 * memory), (a') the same with detect_eval timed right after each batch is normalized (events
 * warm, as mamorictl scan sees them; --batch events, default 32), (b) synthetic ECS process events,
 * (c) parse + normalize + detect end to end on the OTRF lines. Prints the rule-set compile
 * time and database size, and per-event scans/candidates. Median of RUNS runs, thread CPU
 * time. The end-to-end line writes the canonical JSON of alerting events only, as mamorictl
 * scan does (normalizer_set_defer_json). Usage: bench_detect_bench [--events N] [--runs N]
 * [--only otrf|batch|warm|ecs|e2e|ab|kinds|reference] [--batch N] [--ab-batch N] [--rules DIR]…
 * (`batch`: only the detect_eval_batch line of otrf, e.g. under perf, and its read floor: the
 * same events' fields and texts read once, no detection; `ab`: two variants timed on the same
 * batches, bench_ab: a -DDETECT_AB build's code variants, or --ab-batch's batch size; `kinds`:
 * the warm line over the events of each kind — winlog channel and event id — apart, with each
 * kind's share of the events and of the time; `reference`: only the line that measures issue
 * 4's machine figure on this host, hs_reference.h, printed first in a full run). BENCH_GREP=STR
 * in the environment keeps only the OTRF lines holding STR (e.g. '"EventID":10,' for one kind
 * under the profile). */
#include "core/arena.h"
#include "core/event.h"
#include "core/json.h"
#include "detect/detect.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zip.h>

static int RUNS = 5; /* --runs */
#define RUNS_MAX 100
/* Events normalized, then detected together in the warm and end-to-end lines: as mamorictl
 * scan (cli/cmd_scan.c SCAN_BATCH_EVENTS) unless --batch says otherwise. */
static size_t WARM_BATCH = 32;
#define BATCH_MAX 1024
/* Events per detect_eval_batch call in the cold lines (pre-normalized events, as a consumer
 * reads them off the bus). */
#define COLD_BATCH 256

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- inputs ---------------------------------------------------------------------------------- */

#include "hs_reference.h"
#include "otrf_lines.h"

/* Synthetic ECS process starts: everyday executables and command lines varied by a counter,
 * with one suspicious command line in 1000 (an encoded PowerShell download) so alerts stay
 * the exception, as on a real fleet. */
static void make_ecs(struct lines *l, size_t count)
{
    static const char *const images[][3] = {
        {"C:\\\\Program Files\\\\Google\\\\Chrome\\\\Application\\\\chrome.exe", "chrome.exe --type=renderer --lang=en-US --field-trial-handle=", "C:\\\\Program Files\\\\Google\\\\Chrome\\\\Application\\\\chrome.exe"},
        {"C:\\\\Windows\\\\System32\\\\svchost.exe", "svchost.exe -k netsvcs -p -s Schedule -n ", "C:\\\\Windows\\\\System32\\\\services.exe"},
        {"C:\\\\Program Files\\\\Microsoft Office\\\\root\\\\Office16\\\\WINWORD.EXE", "WINWORD.EXE /n C:\\\\Users\\\\alice\\\\Documents\\\\report", "C:\\\\Windows\\\\explorer.exe"},
        {"C:\\\\Windows\\\\explorer.exe", "C:\\\\Windows\\\\Explorer.EXE /factory,", "C:\\\\Windows\\\\System32\\\\userinit.exe"},
        {"C:\\\\Program Files\\\\Git\\\\cmd\\\\git.exe", "git.exe fetch --prune origin refs/heads/feature-", "C:\\\\Program Files\\\\Microsoft VS Code\\\\Code.exe"},
        {"C:\\\\Windows\\\\System32\\\\conhost.exe", "\\\\??\\\\C:\\\\Windows\\\\system32\\\\conhost.exe 0xffffffff -ForceV1 ", "C:\\\\Windows\\\\System32\\\\cmd.exe"},
    };
    for (size_t i = 0; i < count; i++) {
        char cmd[256], *ev = mamori_xmalloc(1400);
        const char *const *t = images[i % (sizeof images / sizeof images[0])];
        const char *image = t[0], *parent = t[2];
        if (i % 1000 == 999) {
            image = "C:\\\\Windows\\\\System32\\\\WindowsPowerShell\\\\v1.0\\\\powershell.exe";
            snprintf(cmd, sizeof cmd, "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIAAp%zu", i);
        } else {
            snprintf(cmd, sizeof cmd, "%s%zu", t[1], i);
        }
        int n = snprintf(ev, 1400,
                         "{\"@timestamp\":\"2024-05-01T12:34:56.789Z\",\"event\":{\"category\":[\"process\"],"
                         "\"type\":[\"start\"]},\"host\":{\"name\":\"ws-%05zu\",\"os\":{\"type\":\"windows\"}},"
                         "\"process\":{\"pid\":%zu,\"executable\":\"%s\",\"command_line\":\"%s\","
                         "\"parent\":{\"pid\":%zu,\"executable\":\"%s\"},\"pe\":{\"original_file_name\":"
                         "\"tool%zu.exe\"}},\"user\":{\"name\":\"user%zu\"}}",
                         i % 5000, 1000 + i % 60000, image, cmd, 500 + i % 100, parent, i % 7, i % 300);
        lines_add(l, ev, (size_t)n);
    }
}

/* NDJSON lines of a file (--ndjson), each its own allocation as make_ecs's. */
static void read_ndjson(struct lines *l, const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "--ndjson %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (l->count < max && (n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue;
        char *copy = mamori_xmalloc((size_t)n + 1);
        memcpy(copy, line, (size_t)n);
        copy[n] = '\0';
        lines_add(l, copy, (size_t)n);
    }
    free(line);
    fclose(f);
}

static void ecs_free(struct lines *l)
{
    for (size_t i = 0; i < l->count; i++) free(l->text[i]);
    free(l->text);
    free(l->len);
}

/* ---- runs ------------------------------------------------------------------------------------ */

struct events {
    mamori_event *ev;
    size_t count;
    size_t rejected;
};

/* Parses and normalizes one line into *out (event index `index`, in arena a); false when the
 * line is not valid JSON or the normalizer rejects it. */
static bool normalize_line(json_parser *p, normalizer *n, arena *a, const struct lines *l, size_t i, uint32_t index,
                           mamori_event *out)
{
    static const event_stamp stamp = {.tenant = "bench", .agent_id = "agent-0001", .agent_hash = 1, .seq = 1,
                                      .received_us = 1714566896000000LL};
    json_value *v = arena_alloc(a, sizeof *v);
    json_error err;
    char why[128];
    return json_parse(p, a, l->text[i], l->len[i], v, &err) == 0 &&
           normalize_event(n, a, EVENT_FORMAT_AUTO, v, &stamp, index, out, why, sizeof why) == 0;
}

static void normalize_all(const struct lines *l, arena *a, struct events *out)
{
    json_parser *p = json_parser_create();
    normalizer *n = normalizer_create();
    out->ev = calloc(l->count ? l->count : 1, sizeof *out->ev);
    for (size_t i = 0; i < l->count; i++) {
        if (normalize_line(p, n, a, l, i, (uint32_t)i, &out->ev[out->count])) out->count++;
        else out->rejected++;
    }
    normalizer_destroy(n);
    json_parser_destroy(p);
}

static void count_match(void *ctx, size_t event_index, const detect_rule *rule)
{
    (void)event_index;
    (void)rule;
    (*(size_t *)ctx)++;
}

static void bench_detect(const char *name, detect_ruleset *rs, const struct events *e, bool batched)
{
    double secs[RUNS_MAX];
    size_t alerts = 0;
    detect_worker_stats st0, st1;
    for (int r = -1; r < RUNS; r++) { /* r = -1: warm-up */
        detect_worker *w = detect_worker_create();
        if (detect_worker_bind(w, rs)) abort();
        alerts = 0;
        double t0 = cpu_s();
        if (batched) {
            for (size_t i = 0; i < e->count; i += COLD_BATCH)
                detect_eval_batch(w, e->ev + i, MAMORI_MIN((size_t)COLD_BATCH, e->count - i), count_match, &alerts);
        } else {
            for (size_t i = 0; i < e->count; i++) {
                const detect_match *m;
                alerts += detect_eval(w, &e->ev[i], &m);
            }
        }
        double t = cpu_s() - t0;
        if (r >= 0) secs[r] = t;
        if (r == RUNS - 1) detect_worker_stats_get(w, &st1);
        detect_worker_destroy(w);
    }
    memset(&st0, 0, sizeof st0);
    qsort(secs, (size_t)RUNS, sizeof secs[0], cmp_double);
    double t = secs[RUNS / 2];
    printf("%-34s %10.0f events/s %8.0f ns/event  %zu events, %zu alerts, %.2f scans/event (%.0f%% from the memo), "
           "%.2f candidates/event, %.1f%% walked by shape (%.2f%% plans built), lazy %.2f answered/%.2f scanned per event, "
           "%.2f values/event left out of the keyword join (they end another), %.3f lines/event from the memo\n",
           name, (double)e->count / t, t / (double)e->count * 1e9, e->count, alerts,
           (double)(st1.scans - st0.scans) / (double)e->count,
           st1.scans > st0.scans ? 100.0 * (double)(st1.memo_hits - st0.memo_hits) / (double)(st1.scans - st0.scans) : 0.0,
           (double)(st1.candidates - st0.candidates) / (double)e->count,
           100.0 * (double)(st1.shape_hits - st0.shape_hits) / (double)e->count,
           100.0 * (double)(st1.shape_builds - st0.shape_builds) / (double)e->count,
           (double)(st1.lazy_direct - st0.lazy_direct) / (double)e->count,
           (double)(st1.lazy_scans - st0.lazy_scans) / (double)e->count,
           (double)(st1.join_suffixes - st0.join_suffixes) / (double)e->count,
           (double)(st1.line_hits - st0.line_hits) / (double)e->count);
}

/* The memory floor of the cold line: read what detection may read of each event — its field
 * array and every cache line of every text (the keyword join copies all texts of 9 bytes or
 * more), the value of each field without text — and nothing else. Same events, same order. */
static void bench_read_floor(const char *name, const struct events *e)
{
    double secs[RUNS_MAX];
    uint64_t sum = 0;
    for (int r = -1; r < RUNS; r++) {
        double t0 = cpu_s();
        for (size_t i = 0; i < e->count; i++) {
            const mamori_event *ev = &e->ev[i];
            /* the prefetches detection issues for cold events (detect/scan.c: field arrays 3
             * events ahead, texts up to 512 bytes 2 ahead), here at once per event */
            if (i + 2 < e->count) {
                const mamori_event *next = &e->ev[i + 2];
                for (uint32_t k = 0; k < next->field_count; k++) {
                    const event_field *f = &next->fields[k];
                    if (f->text)
                        for (uint32_t b = 0; b < f->text_len && b < 512; b += 64) __builtin_prefetch(f->text + b);
                }
            }
            if (i + 3 < e->count) {
                const mamori_event *next = &e->ev[i + 3];
                const char *p = (const char *)next->fields, *end = p + (size_t)next->field_count * sizeof *next->fields;
                for (; p < end; p += 64) __builtin_prefetch(p);
            }
            for (uint32_t k = 0; k < ev->field_count; k++) {
                const event_field *f = &ev->fields[k];
                sum += f->path_hash;
                if (!f->text) {
                    sum += f->value->type;
                    continue;
                }
                const volatile uint8_t *t = (const volatile uint8_t *)f->text;
                for (uint32_t b = 0; b < f->text_len; b += 64) sum += t[b];
                if (f->text_len) sum += t[f->text_len - 1];
            }
        }
        double t = cpu_s() - t0;
        if (r >= 0) secs[r] = t;
    }
    qsort(secs, (size_t)RUNS, sizeof secs[0], cmp_double);
    double t = secs[RUNS / 2];
    printf("%-34s %10.0f events/s %8.0f ns/event  (checksum %llu)\n", name, (double)e->count / t,
           t / (double)e->count * 1e9, (unsigned long long)(sum & 0xff));
}

/* The reference line (hs_reference.h) over the first REF_FIELD bytes of the events' texts of
 * that length or more, at most a million of them. */
static void bench_reference(const char *const *rule_dirs, size_t dirs, const struct events *e)
{
    size_t count = 0, cap = 1000000;
    char *strings = mamori_xmalloc(cap * REF_FIELD);
    for (size_t i = 0; i < e->count && count < cap; i++)
        for (uint32_t k = 0; k < e->ev[i].field_count && count < cap; k++) {
            const event_field *f = &e->ev[i].fields[k];
            if (f->text && f->text_len >= REF_FIELD) memcpy(strings + count++ * REF_FIELD, f->text, REF_FIELD);
        }
    bench_hs_reference(rule_dirs, dirs, strings, count, RUNS, cpu_s);
    free(strings);
}

/* Parses and normalizes the lines from *i on into batch (at most size events; rejected lines
 * skipped), advancing *i. Returns the number of events. */
static size_t normalize_batch(json_parser *p, normalizer *n, arena *a, const struct lines *l, size_t *i,
                              mamori_event *batch, size_t size)
{
    arena_reset(a);
    size_t k = 0;
    for (; k < size && *i < l->count; (*i)++)
        if (normalize_line(p, n, a, l, *i, (uint32_t)k, &batch[k])) k++;
    return k;
}

/* Detection right after normalization, batch by batch (as mamorictl scan sees events: still
 * in cache): normalize --batch lines untimed, then time detect_eval over them. Returns the
 * median ns per event; *alerts, *events: a run's. */
static double warm_ns(detect_ruleset *rs, const struct lines *l, size_t *alerts, size_t *events)
{
    double secs[RUNS_MAX];
    for (int r = -1; r < RUNS; r++) {
        json_parser *p = json_parser_create();
        normalizer *n = normalizer_create();
        detect_worker *w = detect_worker_create();
        if (detect_worker_bind(w, rs)) abort();
        detect_worker_set_warm(w, true); /* each batch was just normalized */
        arena a;
        arena_init(&a, 16u << 20);
        static mamori_event batch[BATCH_MAX];
        double t = 0;
        *alerts = *events = 0;
        for (size_t i = 0; i < l->count;) {
            size_t k = normalize_batch(p, n, &a, l, &i, batch, WARM_BATCH);
            double t0 = cpu_s();
            detect_eval_batch(w, batch, k, count_match, alerts);
            t += cpu_s() - t0;
            *events += k;
        }
        if (r >= 0) secs[r] = t;
        arena_fini(&a);
        detect_worker_destroy(w);
        normalizer_destroy(n);
        json_parser_destroy(p);
    }
    qsort(secs, (size_t)RUNS, sizeof secs[0], cmp_double);
    return *events ? secs[RUNS / 2] / (double)*events * 1e9 : 0;
}

static void bench_warm(const char *name, detect_ruleset *rs, const struct lines *l)
{
    size_t alerts, events;
    double ns = warm_ns(rs, l, &alerts, &events);
    printf("%-34s %10.0f events/s %8.0f ns/event  %zu events, %zu alerts\n", name, 1e9 / ns, ns, events, alerts);
}

/* ---- what each kind of event costs (--only kinds) -------------------------------------- */

#define KINDS_MAX 1024
#define KINDS_SHOWN 14

struct kind {
    char name[112];
    struct lines lines; /* pointing into the corpus' lines */
};

/* A normalized event's kind: its winlog channel and event id, else its ECS event.category. */
static void event_kind(const mamori_event *ev, char *out, size_t cap)
{
    const json_value *ch = event_get_cstr(ev, "winlog.channel"), *id = event_get_cstr(ev, "winlog.event_id");
    if (ch && ch->type == JSON_STRING) { /* strings are not NUL-terminated: their length */
        int chl = (int)MAMORI_MIN(ch->len, 80u);
        if (id && id->type == JSON_NUMBER && (id->flags & JSON_FLAG_INT))
            snprintf(out, cap, "%.*s %lld", chl, ch->str, (long long)id->num.i);
        else if (id && id->type == JSON_STRING) snprintf(out, cap, "%.*s %.*s", chl, ch->str, (int)MAMORI_MIN(id->len, 20u), id->str);
        else snprintf(out, cap, "%.*s", chl, ch->str);
        return;
    }
    const json_value *cat = event_get_cstr(ev, "event.category");
    if (cat && cat->type == JSON_ARRAY && cat->len) cat = &cat->items[0];
    if (cat && cat->type == JSON_STRING) snprintf(out, cap, "(ECS) %.*s", (int)MAMORI_MIN(cat->len, 80u), cat->str);
    else snprintf(out, cap, "(ECS, no category)");
}

static int kind_by_count(const void *a, const void *b)
{
    const struct kind *x = a, *y = b;
    return x->lines.count < y->lines.count ? 1 : x->lines.count > y->lines.count ? -1 : strcmp(x->name, y->name);
}

/* Warm detection (as bench_warm) over the lines of each kind apart: how much of the time each
 * kind takes, for capacity planning and for choosing what to make faster. */
static void bench_kinds(detect_ruleset *rs, const struct lines *l)
{
    static struct kind kinds[KINDS_MAX + 1]; /* the last: every kind past KINDS_MAX */
    uint32_t nkinds = 0, last = 0;
    json_parser *p = json_parser_create();
    normalizer *n = normalizer_create();
    arena a;
    arena_init(&a, 16u << 20);
    for (size_t i = 0; i < l->count; i++) {
        arena_reset(&a);
        mamori_event ev;
        if (!normalize_line(p, n, &a, l, i, 0, &ev)) continue;
        char name[sizeof kinds[0].name];
        event_kind(&ev, name, sizeof name);
        uint32_t k = last < nkinds && !strcmp(kinds[last].name, name) ? last : UINT32_MAX;
        for (uint32_t j = 0; k == UINT32_MAX && j < nkinds; j++)
            if (!strcmp(kinds[j].name, name)) k = j;
        if (k == UINT32_MAX) {
            k = nkinds < KINDS_MAX ? nkinds++ : KINDS_MAX;
            if (k < KINDS_MAX) snprintf(kinds[k].name, sizeof kinds[k].name, "%s", name);
        }
        lines_add(&kinds[k].lines, l->text[i], l->len[i]);
        last = k;
    }
    arena_fini(&a);
    normalizer_destroy(n);
    json_parser_destroy(p);
    qsort(kinds, nkinds, sizeof kinds[0], kind_by_count);
    /* the kinds past KINDS_SHOWN (and past KINDS_MAX) together */
    struct kind *other = &kinds[KINDS_MAX];
    snprintf(other->name, sizeof other->name, "(%u other kinds)", nkinds > KINDS_SHOWN ? nkinds - KINDS_SHOWN : 0);
    for (uint32_t k = KINDS_SHOWN; k < nkinds; k++)
        for (size_t i = 0; i < kinds[k].lines.count; i++) lines_add(&other->lines, kinds[k].lines.text[i], kinds[k].lines.len[i]);
    uint32_t shown = MAMORI_MIN(nkinds, (uint32_t)KINDS_SHOWN);
    double ns[KINDS_SHOWN + 1], total_time = 0;
    size_t count[KINDS_SHOWN + 1], total = 0;
    for (uint32_t k = 0; k <= shown; k++) {
        const struct kind *kd = k < shown ? &kinds[k] : other;
        size_t alerts = 0;
        count[k] = 0;
        ns[k] = kd->lines.count ? warm_ns(rs, &kd->lines, &alerts, &count[k]) : 0;
#ifdef DETECT_PROFILE
        printf("== %s: %zu events, %.0f ns/event\n", kd->name, count[k], ns[k]);
        detect_profile_print(rs, stdout); /* this kind's runs */
#endif
        total += count[k];
        total_time += ns[k] * (double)count[k];
    }
    printf("%-60s %9s %7s %9s %7s\n", "kind (warm batches, each kind apart)", "events", "events", "ns/event", "time");
    for (uint32_t k = 0; k <= shown; k++) {
        if (!count[k]) continue;
        printf("%-60.60s %9zu %6.1f%% %9.0f %6.1f%%\n", k < shown ? kinds[k].name : other->name, count[k],
               100.0 * (double)count[k] / (double)total, ns[k], 100.0 * ns[k] * (double)count[k] / total_time);
    }
    printf("%-60s %9zu %6.1f%% %9.0f %6.1f%%\n", "all (weighted)", total, 100.0, total_time / (double)(total ? total : 1), 100.0);
    for (uint32_t k = 0; k < nkinds; k++) free(kinds[k].lines.text), free(kinds[k].lines.len);
    free(other->lines.text);
    free(other->lines.len);
}

/* ---- A/B: two variants timed in one process on the same events ------------------------ */

/* Variant 1 of `--only ab` normalizes and detects in batches of this many events instead of
 * --batch (0: the same batches; the variants differ by code, DETECT_AB_PICK in a -DDETECT_AB
 * build). */
static size_t AB_BATCH = 0; /* --ab-batch */

static void ab_variant(int v)
{
#ifdef DETECT_AB
    detect_ab_variant = AB_BATCH ? 0 : v;
#else
    (void)v;
#endif
}

static void ab_print(const char *name, const double t[2], const size_t alerts[2], size_t events)
{
    printf("%-34s variant 0 %6.0f ns/event, variant 1 %6.0f ns/event, ratio 1/0 %.4f  %zu events, alerts %zu / %zu%s\n",
           name, t[0] / (double)events * 1e9, t[1] / (double)events * 1e9, t[1] / t[0], events, alerts[0], alerts[1],
           alerts[0] == alerts[1] ? "" : "  DIFFERENT ALERTS");
}

/* Two variants timed in one process on the same lines, so that a noisy host slows both alike:
 * each group of AB_GROUP lines is parsed, normalized and detected batch by batch by one
 * variant, then again by the other, the order alternating from group to group. Two lines:
 * detection alone (warm), and parse + normalize + detect (canonical JSON deferred as in
 * mamorictl scan, and not written). Then cold: the pre-normalized events in two passes of COLD_BATCH-event
 * batches alternating between the variants, swapped in the second pass. Prints each
 * variant's time, the ratio 1/0 (below 1: variant 1 is faster), and both alert counts. Each
 * variant has its worker, bound to rs[v]: the same rule set, or with --ab-rules the set built
 * under that variant (a change to how rules compile). */
#define AB_GROUP 1024
static void bench_ab(detect_ruleset *const rs[2], const char *label, const struct lines *l, const struct events *e)
{
    char name[64];
    double warm[2] = {0, 0}, e2e[2] = {0, 0};
    size_t alerts[2] = {0, 0}, events = 0;
    for (int r = 0; r < RUNS; r++) {
        json_parser *p = json_parser_create();
        normalizer *n = normalizer_create();
        normalizer_set_defer_json(n, true);
        detect_worker *ws[2] = {detect_worker_create(), detect_worker_create()};
        for (int v = 0; v < 2; v++) {
            if (detect_worker_bind(ws[v], rs[v])) abort();
            detect_worker_set_warm(ws[v], true);
        }
        arena a;
        arena_init(&a, 16u << 20);
        static mamori_event batch[BATCH_MAX];
        for (size_t from = 0, group = 0; from < l->count; from += AB_GROUP, group++) {
            struct lines part = *l;
            part.count = MAMORI_MIN(l->count, from + AB_GROUP);
            for (int pass = 0; pass < 2; pass++) {
                int v = pass ^ (int)(group & 1);
                size_t size = v && AB_BATCH ? AB_BATCH : WARM_BATCH;
                ab_variant(v);
                double t0 = cpu_s();
                for (size_t i = from; i < part.count;) {
                    size_t k = normalize_batch(p, n, &a, &part, &i, batch, size);
                    double t1 = cpu_s();
                    detect_eval_batch(ws[v], batch, k, count_match, &alerts[v]);
                    warm[v] += cpu_s() - t1;
                    if (!pass) events += k;
                }
                e2e[v] += cpu_s() - t0;
            }
        }
        arena_fini(&a);
        for (int v = 0; v < 2; v++) detect_worker_destroy(ws[v]);
        normalizer_destroy(n);
        json_parser_destroy(p);
    }
    snprintf(name, sizeof name, "A/B  %s, warm batches", label);
    ab_print(name, warm, alerts, events);
    snprintf(name, sizeof name, "A/B  %s, parse+normalize+detect", label);
    ab_print(name, e2e, alerts, events);
    if (AB_BATCH) return; /* cold batches are not the caller's to size */

    double cold[2] = {0, 0};
    alerts[0] = alerts[1] = events = 0;
    for (int r = 0; r < RUNS; r++) {
        detect_worker *ws[2] = {detect_worker_create(), detect_worker_create()};
        for (int v = 0; v < 2; v++)
            if (detect_worker_bind(ws[v], rs[v])) abort();
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0, nb = 0; i < e->count; i += COLD_BATCH, nb++) {
                size_t k = MAMORI_MIN((size_t)COLD_BATCH, e->count - i);
                int v = pass ^ (int)(nb & 1);
                ab_variant(v);
                double t0 = cpu_s();
                detect_eval_batch(ws[v], e->ev + i, k, count_match, &alerts[v]);
                cold[v] += cpu_s() - t0;
            }
        events += e->count;
        for (int v = 0; v < 2; v++) detect_worker_destroy(ws[v]);
    }
    snprintf(name, sizeof name, "A/B  %s, cold (pre-normalized)", label);
    ab_print(name, cold, alerts, events);
    ab_variant(0);
}

/* As mamorictl scan: the canonical JSON of an event is written only when it raises an alert. */
struct e2e_ctx {
    normalizer *n;
    arena *a;
    mamori_event *batch;
    size_t alerts, json_bytes;
};

static void e2e_match(void *ctx, size_t event_index, const detect_rule *rule)
{
    struct e2e_ctx *c = ctx;
    (void)rule;
    mamori_event *ev = &c->batch[event_index];
    char why[128];
    if (!ev->json && normalize_event_json(c->n, c->a, ev, why, sizeof why) != 0) abort();
    c->json_bytes += ev->json_len;
    c->alerts++;
}

static void bench_e2e(const char *name, detect_ruleset *rs, const struct lines *l)
{
    double secs[RUNS_MAX];
    size_t alerts = 0;
    for (int r = -1; r < RUNS; r++) {
        json_parser *p = json_parser_create();
        normalizer *n = normalizer_create();
        detect_worker *w = detect_worker_create();
        if (detect_worker_bind(w, rs)) abort();
        detect_worker_set_warm(w, true); /* as mamorictl scan */
        arena a;
        arena_init(&a, 16u << 20);
        alerts = 0;
        static mamori_event batch[BATCH_MAX];
        normalizer_set_defer_json(n, true);
        struct e2e_ctx ctx = {.n = n, .a = &a, .batch = batch};
        double t0 = cpu_s();
        for (size_t i = 0; i < l->count;) { /* as mamorictl scan does: batches of --batch */
            size_t k = normalize_batch(p, n, &a, l, &i, batch, WARM_BATCH);
            detect_eval_batch(w, batch, k, e2e_match, &ctx);
        }
        double t = cpu_s() - t0;
        alerts = ctx.alerts;
        if (r >= 0) secs[r] = t;
        arena_fini(&a);
        detect_worker_destroy(w);
        normalizer_destroy(n);
        json_parser_destroy(p);
    }
    qsort(secs, (size_t)RUNS, sizeof secs[0], cmp_double);
    double t = secs[RUNS / 2];
    printf("%-34s %10.0f events/s %8.0f ns/event  %8.1f MB/s, %zu alerts\n", name, (double)l->count / t,
           t / (double)l->count * 1e9, (double)l->bytes / t / 1e6, alerts);
}

/* The ECS-side lines (--ndjson's file, else the synthetic process starts), normalized in a. */
static void ecs_events(struct lines *ecs, arena *a, struct events *e, const char *ndjson, size_t max_events)
{
    if (ndjson) read_ndjson(ecs, ndjson, max_events);
    else make_ecs(ecs, max_events == SIZE_MAX ? 200000 : max_events);
    arena_init(a, 64u << 20);
    normalize_all(ecs, a, e);
}

int main(int argc, char **argv)
{
    size_t max_events = SIZE_MAX;
    const char *only = NULL;
    const char *rule_dirs[16];
    size_t rule_dir_count = 0;
    bool ab_rules = false;
    const char *ndjson = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc) max_events = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) RUNS = atoi(argv[++i]) > 0 && atoi(argv[i]) <= RUNS_MAX ? atoi(argv[i]) : 5;
        else if (!strcmp(argv[i], "--rules") && i + 1 < argc && rule_dir_count < 16) rule_dirs[rule_dir_count++] = argv[++i];
        else if (!strcmp(argv[i], "--ab-rules")) ab_rules = true;
        else if (!strcmp(argv[i], "--ndjson") && i + 1 < argc) ndjson = argv[++i];
        else if ((!strcmp(argv[i], "--batch") || !strcmp(argv[i], "--ab-batch")) && i + 1 < argc &&
                 strtoull(argv[i + 1], NULL, 10) >= 1 && strtoull(argv[i + 1], NULL, 10) <= BATCH_MAX)
            *(!strcmp(argv[i], "--batch") ? &WARM_BATCH : &AB_BATCH) = strtoull(argv[i + 1], NULL, 10), i++;
        else {
            fprintf(stderr, "usage: %s [--events N] [--runs N] [--only otrf|batch|warm|ecs|e2e|ab|kinds|reference] [--batch N] [--ab-batch N] [--ab-rules] [--ndjson FILE] [--rules DIR]…\n"
                            "  --batch N: events per batch of the warm and e2e lines (1-%d, default 32, as mamorictl scan)\n"
                            "  --ab-batch N: with --only ab, variant 1 uses batches of N instead of a code variant\n"
                            "  --ab-rules: with --only ab, each variant's rule set is built under that variant, and the\n"
                            "    synthetic ECS process starts are compared too\n"
                            "  --ndjson FILE: the ecs lines (and --ab-rules' second comparison) read the events of FILE\n"
                            "    (e.g. mamori-agent-sim --dump) instead of the synthetic ECS process starts\n",
                    argv[0], BATCH_MAX);
            return 2;
        }
    }
    if ((AB_BATCH || ab_rules) && !(only && !strcmp(only, "ab"))) {
        fprintf(stderr, "--ab-batch, --ab-rules: only with --only ab\n");
        return 2;
    }
#ifndef DETECT_AB
    if (only && !strcmp(only, "ab") && !AB_BATCH) {
        fprintf(stderr, "--only ab: this build has no code variants to compare (configure with "
                        "-DCMAKE_C_FLAGS=-DDETECT_AB), and --ab-batch is not given\n");
        return 2;
    }
#endif
    static char defaults[3][1024];
    if (rule_dir_count == 0) {
        const char *sub[] = {"rules", "rules-emerging-threats", "rules-threat-hunting"};
        for (int i = 0; i < 3; i++) {
            snprintf(defaults[i], sizeof defaults[i], "%s/sigma/%s", MAMORI_DATA_DIR, sub[i]);
            rule_dirs[rule_dir_count++] = defaults[i];
        }
    }

    double t0 = wall_s();
    detect_loader *loader = detect_loader_create(NULL);
    char err[512];
    for (size_t i = 0; i < rule_dir_count; i++)
        if (detect_loader_add_path(loader, rule_dirs[i], err, sizeof err)) fprintf(stderr, "%s\n", err);
    detect_ruleset *rs, *ab_rs[2] = {NULL, NULL};
    if (detect_loader_build(loader, &rs, err, sizeof err)) {
        fprintf(stderr, "build: %s\n", err);
        return 1;
    }
    ab_rs[0] = ab_rs[1] = rs;
    if (ab_rules) { /* the first build was variant 0's (ab_variant starts at 0) */
        detect_loader *l1 = detect_loader_create(NULL);
        for (size_t i = 0; i < rule_dir_count; i++)
            if (detect_loader_add_path(l1, rule_dirs[i], err, sizeof err)) fprintf(stderr, "%s\n", err);
        ab_variant(1);
        if (detect_loader_build(l1, &ab_rs[1], err, sizeof err)) {
            fprintf(stderr, "build (variant 1): %s\n", err);
            return 1;
        }
        ab_variant(0);
        const detect_report *r1 = detect_loader_report(l1);
        printf("variant 1 rules: %u databases, %u patterns, %.1f MiB databases\n", r1->databases, r1->patterns,
               (double)r1->database_bytes / 1048576.0);
        detect_loader_destroy(l1);
    }
    const detect_report *rep = detect_loader_report(loader);
    printf("rules: %u loaded, %u rejected, %u skipped; load %.0f ms + Hyperscan %.0f ms (wall %.0f ms); "
           "%u databases, %u patterns, %.1f MiB databases, %.0f KiB scratch, %.1f MiB on huge pages\n",
           rep->loaded, rep->rejected, rep->skipped, rep->load_ms, rep->compile_ms, (wall_s() - t0) * 1000,
           rep->databases, rep->patterns, (double)rep->database_bytes / 1048576.0, (double)rep->scratch_bytes / 1024.0,
           (double)rep->hot_bytes / 1048576.0);

    bool batch_only = only && !strcmp(only, "batch");
    if (batch_only) only = "otrf";
    if (!only || !strcmp(only, "otrf") || !strcmp(only, "e2e") || !strcmp(only, "warm") || !strcmp(only, "ab") ||
        !strcmp(only, "kinds") || !strcmp(only, "reference")) {
        struct lines otrf = {0};
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/otrf", MAMORI_DATA_DIR);
        walk_zips(&otrf, dir, max_events);
        printf("OTRF: %zu lines, %.0f MB, %.0f bytes avg\n", otrf.count, (double)otrf.bytes / 1e6,
               otrf.count ? (double)otrf.bytes / (double)otrf.count : 0.0);
        if (!only || !strcmp(only, "otrf") || !strcmp(only, "reference")) {
            arena a;
            arena_init(&a, 64u << 20);
            struct events e = {0};
            normalize_all(&otrf, &a, &e);
            printf("OTRF normalized: %zu events (%zu rejected)\n", e.count, e.rejected);
            if (!batch_only) bench_reference(rule_dirs, rule_dir_count, &e); /* `batch`: its lines only */
            if (only && !strcmp(only, "reference")) goto done;
            if (!batch_only) bench_detect("detect_eval        otrf (all rules)", rs, &e, false);
            bench_detect("detect_eval_batch  otrf (all rules)", rs, &e, true);
            bench_read_floor("read floor         otrf (no rules)", &e);
#ifdef DETECT_PROFILE
            detect_profile_print(rs, stdout); /* all runs of the lines above */
#endif
        done:
            free(e.ev);
            arena_fini(&a);
        }
        if (!only || !strcmp(only, "warm")) {
            bench_warm("detect_eval  otrf, warm batches", rs, &otrf);
#ifdef DETECT_PROFILE
            if (only) detect_profile_print(rs, stdout);
#endif
        }
        if (!only || !strcmp(only, "e2e")) bench_e2e("parse+normalize+detect  otrf", rs, &otrf);
        if (only && !strcmp(only, "kinds")) bench_kinds(rs, &otrf);
        if (only && !strcmp(only, "ab")) {
            arena a;
            arena_init(&a, 64u << 20);
            struct events e = {0};
            normalize_all(&otrf, &a, &e);
            bench_ab(ab_rs, "otrf", &otrf, &e);
            free(e.ev);
            arena_fini(&a);
        }
    }
    if (ab_rules) {
        struct lines ecs = {0};
        arena a;
        struct events e = {0};
        ecs_events(&ecs, &a, &e, ndjson, max_events);
        bench_ab(ab_rs, ndjson ? "ndjson" : "ecs process", &ecs, &e);
        free(e.ev);
        arena_fini(&a);
        ecs_free(&ecs);
    }
    if (!only || !strcmp(only, "ecs")) {
        struct lines ecs = {0};
        arena a;
        struct events e = {0};
        ecs_events(&ecs, &a, &e, ndjson, max_events);
        bench_detect(ndjson ? "detect_eval        ndjson" : "detect_eval        ecs process", rs, &e, false);
        bench_detect(ndjson ? "detect_eval_batch  ndjson" : "detect_eval_batch  ecs process", rs, &e, true);
#ifdef DETECT_PROFILE
        detect_profile_print(rs, stdout);
#endif
        free(e.ev);
        arena_fini(&a);
        ecs_free(&ecs);
    }
    if (ab_rs[1] != rs) detect_ruleset_unref(ab_rs[1]);
    detect_ruleset_unref(rs);
    detect_loader_destroy(loader);
    return 0;
}
