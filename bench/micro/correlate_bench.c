/* bench/micro/correlate_bench.c — the correlation engine alone (detect/correlate.h): how fast
 * base-rule matches are made self-contained and fed, what a held group-by key costs in
 * memory, and how long a checkpoint of a correlation's state takes to encode and decode.
 * Not a test: it prints numbers (docs/detection.md §11.3 records them).
 *
 *   bench_correlate_bench [--keys N] [--per-key M] [--runs R] [--keys-max K]
 *
 * It also times incremental checkpoints (correlate_state_delta): every key of the event_count
 * once, then again after 1,000 of its keys changed.
 *
 * --keys-max below --keys shows the memory bound: keys past it evict the least recently
 * updated ones (counted) and the peak RSS stays flat.
 *
 * Three correlations share the base rule failed_login: an event_count that never fires (pure
 * state: every key stays), a value_count and a temporal_ordered failed → successful login
 * that fires once per key. Events are built directly (user.name, source.ip), one distinct
 * user per key, times increasing by 1 µs, so nothing is late or expired. */
#include "core/arena.h"
#include "core/clock.h"
#include "core/event.h"
#include "core/json.h"
#include "detect/correlate.h"
#include "detect/detect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char RULES[] =
    "title: hold\nid: c-hold\ncorrelation:\n    type: event_count\n    rules: [failed_login]\n    group-by: [User]\n"
    "    timespan: 1d\n    condition:\n        gte: 1000000\n---\n"
    "title: spray\nid: c-spray\ncorrelation:\n    type: value_count\n    rules: [failed_login]\n    group-by: [User]\n"
    "    timespan: 1h\n    condition:\n        field: IpAddress\n        gte: 1000\n---\n"
    "title: brute\nid: c-brute\ncorrelation:\n    type: temporal_ordered\n    rules: [failed_login, successful_login]\n"
    "    group-by: [User]\n    timespan: 10m\n---\n"
    "title: failed\nname: failed_login\nlogsource:\n    product: windows\n    service: security\n"
    "detection:\n    sel:\n        EventID: 4625\n    condition: sel\n---\n"
    "title: ok\nname: successful_login\nlogsource:\n    product: windows\n    service: security\n"
    "detection:\n    sel:\n        EventID: 4624\n    condition: sel\n";

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* An event with two fields, sorted by path as event_get expects. */
typedef struct bev {
    mamori_event ev;
    event_field fields[2];
    json_value ip, user;
    char ip_text[24], user_text[32]; /* "user" and up to 20 digits */
} bev;

static void make_event(bev *b, uint64_t user, uint32_t ip, int64_t ts_us)
{
    memset(b, 0, sizeof *b);
    snprintf(b->ip_text, sizeof b->ip_text, "10.%u.%u.%u", ip >> 16 & 255, ip >> 8 & 255, ip & 255);
    snprintf(b->user_text, sizeof b->user_text, "user%llu", (unsigned long long)user);
    b->ip = (json_value){.type = JSON_STRING, .len = (uint32_t)strlen(b->ip_text), .str = b->ip_text};
    b->user = (json_value){.type = JSON_STRING, .len = (uint32_t)strlen(b->user_text), .str = b->user_text};
    b->fields[0] = (event_field){.path = "source.ip", .path_len = 9, .value = &b->ip};
    b->fields[1] = (event_field){.path = "user.name", .path_len = 9, .value = &b->user};
    b->ev.ts_us = ts_us;
    b->ev.field_count = 2;
    b->ev.fields = b->fields;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void count_alert(void *ctx, const correlate_alert *a) { *(uint64_t *)ctx += a->emit; }

typedef struct delta_count {
    uint64_t keys, bytes;
} delta_count;

static void count_delta(void *ctx, const char *key, size_t key_len, const void *value, size_t value_len)
{
    delta_count *d = ctx;
    (void)key;
    d->keys += value != NULL;
    d->bytes += key_len + value_len;
}

int main(int argc, char **argv)
{
    uint64_t keys = 1000000, per_key = 1, keys_max = 0;
    int runs = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--keys")) keys = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--per-key")) per_key = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--keys-max")) keys_max = strtoull(argv[i + 1], NULL, 10);
    }
    if (!keys || !per_key || runs < 1) return 2;
    detect_options opt;
    detect_options_default(&opt);
    opt.correlations = true;
    detect_loader *loader = detect_loader_create(&opt);
    detect_loader_add_text(loader, "bench.yml", RULES, sizeof RULES - 1);
    detect_ruleset *rs;
    correlate_set *set;
    char err[256];
    if (detect_loader_build(loader, &rs, err, sizeof err) || correlate_set_build(loader, rs, &set) ||
        correlate_set_count(set) != 3) {
        fprintf(stderr, "cannot load the benchmark rules\n");
        return 1;
    }
    const detect_rule *failed = NULL, *ok = NULL;
    for (size_t i = 0; i < detect_ruleset_rule_count(rs); i++) {
        const detect_rule *r = detect_ruleset_rule(rs, i);
        if (!strcmp(r->name, "failed_login")) failed = r;
        if (!strcmp(r->name, "successful_login")) ok = r;
    }
    correlate_options copt;
    correlate_options_default(&copt);
    copt.keys_max = (uint32_t)(keys_max ? keys_max : keys + 1);
    const int64_t t0 = 1714564800000000LL;
    double *create_us = calloc((size_t)runs, sizeof *create_us), *feed_us = calloc((size_t)runs, sizeof *feed_us);
    double *bytes_key = calloc((size_t)runs, sizeof *bytes_key), *enc_ms = calloc((size_t)runs, sizeof *enc_ms);
    double *dec_ms = calloc((size_t)runs, sizeof *dec_ms), *seq_us = calloc((size_t)runs, sizeof *seq_us);
    size_t enc_bytes = 0;
    double *delta_all_ms = calloc((size_t)runs, sizeof(double)), *delta_1k_ms = calloc((size_t)runs, sizeof(double));
    uint64_t delta_all_keys = 0, delta_1k_keys = 0, delta_1k_bytes = 0;
    uint64_t alerts = 0;
    correlate_stats st = {0};
    for (int run = 0; run < runs; run++) {
        /* 1. hold: keys × per_key failed logins, never firing */
        long rss0 = rss_kib();
        correlate_engine *e = correlate_engine_create(set, &copt);
        double t_create = 0, t_feed = 0;
        uint64_t n = 0;
        for (uint64_t m = 0; m < per_key; m++) {
            for (uint64_t k = 0; k < keys; k++, n++) {
                bev b;
                make_event(&b, k, (uint32_t)(n % 1000), t0 + (int64_t)n);
                int64_t a = clock_mono_ns();
                correlate_match *cm = correlate_match_create(set, failed, &b.ev, b.ev.ts_us, "0123456789abcdef0123456789abcdef0123456789abcdef01234567");
                int64_t c = clock_mono_ns();
                correlate_engine_feed(e, cm, NULL, NULL);
                int64_t d = clock_mono_ns();
                correlate_match_destroy(cm);
                t_create += (double)(c - a);
                t_feed += (double)(d - c);
            }
        }
        long rss1 = rss_kib();
        correlate_engine_stats(e, SIZE_MAX, &st);
        create_us[run] = t_create / 1000.0 / (double)n;
        feed_us[run] = t_feed / 1000.0 / (double)n;
        bytes_key[run] = (double)(rss1 - rss0) * 1024.0 / (double)st.keys;
        /* 2. checkpoint the event_count state (keys × per_key matches) */
        buf out;
        buf_init(&out);
        int64_t a = clock_mono_ns();
        correlate_state_encode(e, 0, &out);
        int64_t b2 = clock_mono_ns();
        correlate_engine *e2 = correlate_engine_create(set, &copt);
        if (correlate_state_decode(e2, 0, out.data, out.len)) return 1;
        int64_t c2 = clock_mono_ns();
        enc_ms[run] = (double)(b2 - a) / 1e6;
        dec_ms[run] = (double)(c2 - b2) / 1e6;
        enc_bytes = out.len;
        buf_fini(&out);
        correlate_engine_destroy(e2);
        /* 2b. incremental checkpoints: every key once, then after 1,000 keys changed */
        {
            buf scratch;
            buf_init(&scratch);
            delta_count dc = {0};
            int64_t d0 = clock_mono_ns();
            (void)correlate_state_delta(e, 0, false, &scratch, count_delta, &dc);
            int64_t d1 = clock_mono_ns();
            delta_all_ms[run] = (double)(d1 - d0) / 1e6;
            delta_all_keys = dc.keys;
            uint64_t touched = keys < 1000 ? keys : 1000;
            for (uint64_t k = 0; k < touched; k++) {
                bev b;
                make_event(&b, k, 7, t0 + (int64_t)(n + k));
                correlate_engine_feed_event(e, failed, &b.ev, b.ev.ts_us, "0123456789abcdef0123456789abcdef0123456789abcdef01234567", NULL, NULL);
            }
            n += touched;
            dc = (delta_count){0};
            int64_t d2 = clock_mono_ns();
            (void)correlate_state_delta(e, 0, false, &scratch, count_delta, &dc);
            delta_1k_ms[run] = (double)(clock_mono_ns() - d2) / 1e6;
            delta_1k_keys = dc.keys;
            delta_1k_bytes = dc.bytes;
            buf_fini(&scratch);
        }
        /* 3. sequences: a successful login per key completes the temporal_ordered */
        alerts = 0;
        int64_t s0 = clock_mono_ns();
        for (uint64_t k = 0; k < keys; k++) {
            bev b;
            make_event(&b, k, 1, t0 + (int64_t)(n + k));
            correlate_engine_feed_event(e, ok, &b.ev, b.ev.ts_us, "ok", count_alert, &alerts);
        }
        seq_us[run] = (double)(clock_mono_ns() - s0) / 1000.0 / (double)keys;
        correlate_engine_destroy(e);
    }
    qsort(create_us, (size_t)runs, sizeof *create_us, cmp_double);
    qsort(feed_us, (size_t)runs, sizeof *feed_us, cmp_double);
    qsort(bytes_key, (size_t)runs, sizeof *bytes_key, cmp_double);
    qsort(enc_ms, (size_t)runs, sizeof *enc_ms, cmp_double);
    qsort(dec_ms, (size_t)runs, sizeof *dec_ms, cmp_double);
    qsort(seq_us, (size_t)runs, sizeof *seq_us, cmp_double);
    qsort(delta_all_ms, (size_t)runs, sizeof(double), cmp_double);
    qsort(delta_1k_ms, (size_t)runs, sizeof(double), cmp_double);
    int mid = runs / 2;
    printf("{\"keys\":%llu,\"per_key\":%llu,\"runs\":%d,\"correlations_per_match\":3,"
           "\"match_create_us\":%.3f,\"feed_us\":%.3f,\"keys_held\":%llu,\"matches_held\":%llu,"
           "\"rss_bytes_per_key\":%.0f,\"encode_ms\":%.1f,\"decode_ms\":%.1f,\"state_bytes\":%zu,"
           "\"sequence_feed_us\":%.3f,\"sequence_alerts\":%llu,\"keys_max\":%u,\"evicted_keys\":%llu,"
           "\"delta_all_ms\":%.1f,\"delta_all_keys\":%llu,\"delta_after_1000_ms\":%.2f,\"delta_after_1000_keys\":%llu,"
           "\"delta_after_1000_bytes\":%llu,\"peak_rss_mib\":%.0f}\n",
           (unsigned long long)keys, (unsigned long long)per_key, runs, create_us[mid], feed_us[mid],
           (unsigned long long)st.keys, (unsigned long long)st.events, bytes_key[mid], enc_ms[mid], dec_ms[mid], enc_bytes,
           seq_us[mid], (unsigned long long)alerts, copt.keys_max, (unsigned long long)st.evicted_keys,
           delta_all_ms[mid], (unsigned long long)delta_all_keys, delta_1k_ms[mid], (unsigned long long)delta_1k_keys,
           (unsigned long long)delta_1k_bytes, peak_rss_mib());
    free(delta_all_ms);
    free(delta_1k_ms);
    free(create_us);
    free(feed_us);
    free(bytes_key);
    free(enc_ms);
    free(dec_ms);
    free(seq_us);
    correlate_set_destroy(set);
    detect_ruleset_unref(rs);
    detect_loader_destroy(loader);
    return 0;
}
