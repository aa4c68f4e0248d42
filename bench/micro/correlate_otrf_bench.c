/* bench/micro/correlate_otrf_bench.c — what correlation rules cost on top of single-event
 * detection (issue 5): the whole SigmaHQ set plus N generated correlation rules over every
 * OTRF recording, one core. The correlations reference the base rules that fire most on OTRF
 * (found by a first pass), grouped by host.name, five shapes in turn: event_count,
 * value_count (distinct Image), temporal_ordered of two rules, temporal of three,
 * event_count grouped by (host.name, User). Each run evaluates the events with
 * detect_eval_batch in batches of 256 exactly as a detection thread does (events in
 * event-time order); the "with
 * correlations" runs also keep the matches of rules correlations use and feed them to one
 * engine after each batch (correlate_engine_feed_event, event ids formatted as the server
 * does). Runs alternate (base, with; with, base) so both see the same machine; thread CPU
 * time, medians. overhead_pct compares whole runs (noisy: a few % either way on a shared VM);
 * feed_overhead_pct is the CPU time inside the correlation feeding alone over the base run's.
 * Then the state: keys held, checkpoint encode time and bytes for all correlations.
 *
 *   bench_correlate_otrf_bench [--correlations N] [--runs R] [--events N]
 *
 * Not a test: it prints one JSON line (docs/detection.md §11.9 records it). */
#include "core/arena.h"
#include "core/event.h"
#include "core/json.h"
#include "detect/correlate.h"
#include "detect/detect.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#define RUNS_MAX 50
#define BATCH 256
#define TOP_RULES 40

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_time(const void *a, const void *b)
{
    const mamori_event *x = a, *y = b;
    if (x->ts_us != y->ts_us) return x->ts_us < y->ts_us ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- OTRF lines (as bench_detect_bench reads them) ------------------------------------------- */

#include "otrf_lines.h"

/* ---- rule sets ------------------------------------------------------------------------------- */

static int build(const char *extra_file, bool correlations, detect_loader **loader, detect_ruleset **rs)
{
    detect_options opt;
    detect_options_default(&opt);
    opt.correlations = correlations;
    *loader = detect_loader_create(&opt);
    char err[512], dir[1024];
    const char *sub[] = {"rules", "rules-emerging-threats", "rules-threat-hunting"};
    for (int i = 0; i < 3; i++) {
        snprintf(dir, sizeof dir, "%s/sigma/%s", MAMORI_DATA_DIR, sub[i]);
        if (detect_loader_add_path(*loader, dir, err, sizeof err)) fprintf(stderr, "%s\n", err);
    }
    if (extra_file && detect_loader_add_path(*loader, extra_file, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (detect_loader_build(*loader, rs, err, sizeof err)) {
        fprintf(stderr, "build: %s\n", err);
        return 1;
    }
    return 0;
}

struct counts {
    uint64_t *per_rule;
};

static void count_rule(void *ctx, size_t event_index, const detect_rule *rule)
{
    (void)event_index;
    ((struct counts *)ctx)->per_rule[rule->index]++;
}

static const detect_rule *top_rule(const detect_ruleset *rs, const size_t *top, size_t ntop, size_t i)
{
    return detect_ruleset_rule(rs, top[i % ntop]);
}

static void write_correlations(FILE *f, const detect_ruleset *rs, const size_t *top, size_t ntop, int n)
{
    for (int i = 0; i < n; i++) {
        const char *a = top_rule(rs, top, ntop, (size_t)i)->id, *b = top_rule(rs, top, ntop, (size_t)i + 1)->id,
                   *c = top_rule(rs, top, ntop, (size_t)i + 2)->id;
        fprintf(f, "%stitle: bench correlation %d\nlevel: medium\ncorrelation:\n", i ? "---\n" : "", i);
        switch (i % 5) {
        case 0:
            fprintf(f, "    type: event_count\n    rules: ['%s']\n    group-by: [host.name]\n    timespan: 10m\n"
                       "    condition: {gte: 5}\n", a);
            break;
        case 1:
            fprintf(f, "    type: value_count\n    rules: ['%s']\n    group-by: [host.name]\n    timespan: 1h\n"
                       "    condition: {field: Image, gte: 3}\n", a);
            break;
        case 2:
            fprintf(f, "    type: temporal_ordered\n    rules: ['%s', '%s']\n    group-by: [host.name]\n"
                       "    timespan: 5m\n", a, b);
            break;
        case 3:
            fprintf(f, "    type: temporal\n    rules: ['%s', '%s', '%s']\n    group-by: [host.name]\n"
                       "    timespan: 30m\n", a, b, c);
            break;
        default:
            fprintf(f, "    type: event_count\n    rules: ['%s']\n    group-by: [host.name, User]\n    timespan: 1h\n"
                       "    condition: {gte: 10}\n", a);
            break;
        }
    }
}

/* ---- runs ------------------------------------------------------------------------------------ */

struct hit {
    uint32_t index;
    const detect_rule *rule;
};

struct feed {
    const correlate_set *set;
    struct hit *hits;
    size_t n, cap;
    uint64_t matches;
};

static void keep_hit(void *ctx, size_t event_index, const detect_rule *rule)
{
    struct feed *f = ctx;
    f->matches++;
    if (!correlate_set_uses_rule(f->set, rule)) return;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 1024;
        f->hits = realloc(f->hits, f->cap * sizeof *f->hits);
    }
    f->hits[f->n++] = (struct hit){(uint32_t)event_index, rule};
}

static void count_alert(void *ctx, const correlate_alert *a)
{
    if (a->emit) (*(uint64_t *)ctx)++;
}

int main(int argc, char **argv)
{
    int n_corr = 100, runs = 5;
    size_t max_events = SIZE_MAX;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--correlations") && i + 1 < argc) n_corr = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--events") && i + 1 < argc) max_events = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--correlations N] [--runs R] [--events N]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > RUNS_MAX || n_corr < 1) return 2;
    struct lines otrf = {0};
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/otrf", MAMORI_DATA_DIR);
    walk_zips(&otrf, dir, max_events);
    arena a;
    arena_init(&a, 64u << 20);
    json_parser *p = json_parser_create();
    normalizer *norm = normalizer_create();
    mamori_event *ev = calloc(otrf.count ? otrf.count : 1, sizeof *ev);
    size_t nev = 0;
    for (size_t i = 0; i < otrf.count; i++) {
        event_stamp stamp = {.tenant = "bench", .agent_id = "agent-0001", .agent_hash = 1, .seq = i / BATCH + 1,
                             .received_us = 1714566896000000LL};
        json_value *v = arena_alloc(&a, sizeof *v);
        json_error jerr;
        char why[128];
        if (json_parse(p, &a, otrf.text[i], otrf.len[i], v, &jerr) == 0 &&
            normalize_event(norm, &a, EVENT_FORMAT_AUTO, v, &stamp, (uint32_t)(i % BATCH), &ev[nev], why, sizeof why) == 0)
            nev++;
    }
    /* in event-time order, as agents streaming now would send them (the recordings span years:
     * in file order most matches would be late) */
    qsort(ev, nev, sizeof *ev, cmp_time);
    fprintf(stderr, "OTRF: %zu events normalized\n", nev);

    /* pass 1: the base rules that fire most */
    detect_loader *l0;
    detect_ruleset *rs0;
    if (build(NULL, false, &l0, &rs0)) return 1;
    size_t nrules = detect_ruleset_rule_count(rs0);
    struct counts cnt = {calloc(nrules, sizeof(uint64_t))};
    detect_worker *w0 = detect_worker_create();
    if (detect_worker_bind(w0, rs0)) return 1;
    for (size_t i = 0; i < nev; i += BATCH) detect_eval_batch(w0, ev + i, MAMORI_MIN((size_t)BATCH, nev - i), count_rule, &cnt);
    detect_worker_destroy(w0);
    size_t top[TOP_RULES], ntop = 0;
    for (; ntop < TOP_RULES; ntop++) { /* selection of the most frequent rules with an id */
        size_t best = SIZE_MAX;
        for (size_t r = 0; r < nrules; r++) {
            bool taken = false;
            for (size_t k = 0; k < ntop; k++) taken |= top[k] == r;
            if (!taken && cnt.per_rule[r] && detect_ruleset_rule(rs0, r)->id[0] &&
                (best == SIZE_MAX || cnt.per_rule[r] > cnt.per_rule[best]))
                best = r;
        }
        if (best == SIZE_MAX) break;
        top[ntop] = best;
    }
    if (ntop < 3) {
        fprintf(stderr, "fewer than 3 rules fire on OTRF\n");
        return 1;
    }
    char path[] = "/tmp/mamori-corr-bench-XXXXXX.yml";
    int fd = mkstemps(path, 4);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) return 1;
    write_correlations(f, rs0, top, ntop, n_corr);
    fclose(f);

    /* pass 2: the same set plus the correlations */
    detect_loader *l1;
    detect_ruleset *rs1;
    correlate_set *set = NULL;
    int rc = build(path, true, &l1, &rs1);
    unlink(path);
    if (rc || correlate_set_build(l1, rs1, &set)) return 1;
    const detect_report *rep = detect_loader_report(l1);
    fprintf(stderr, "rules: %u loaded, %u correlations, %u rejected\n", rep->loaded, rep->correlations, rep->rejected);

    double base[RUNS_MAX], with[RUNS_MAX], feed[RUNS_MAX], ckpt_ms = 0;
    uint64_t alerts = 0, matches = 0, fed = 0;
    size_t state_bytes = 0;
    correlate_stats st = {0};
    for (int r = -1; r < runs; r++) { /* r = -1: warm-up */
        detect_worker *w = detect_worker_create();
        if (detect_worker_bind(w, rs1)) return 1;
        struct feed fb = {.set = set}, fw = {.set = set};
        correlate_options copt;
        correlate_options_default(&copt);
        correlate_engine *e = correlate_engine_create(set, &copt);
        uint64_t al = 0, nfed = 0;
        double tb = 0, tw = 0, tf = 0;
        for (int order = 0; order < 2; order++) { /* odd runs: with correlations first */
            bool with_corr = (order == 0) == ((r & 1) != 0);
            double t0 = cpu_s();
            if (!with_corr) {
                for (size_t i = 0; i < nev; i += BATCH) {
                    fb.n = 0;
                    detect_eval_batch(w, ev + i, MAMORI_MIN((size_t)BATCH, nev - i), keep_hit, &fb);
                }
                tb = cpu_s() - t0;
                continue;
            }
            for (size_t i = 0; i < nev; i += BATCH) {
                fw.n = 0;
                detect_eval_batch(w, ev + i, MAMORI_MIN((size_t)BATCH, nev - i), keep_hit, &fw);
                if (!fw.n) continue;
                double f0 = cpu_s();
                for (size_t h = 0; h < fw.n; h++) {
                    const mamori_event *x = &ev[i + fw.hits[h].index];
                    char eid[EVENT_ID_HEX_CHARS + 1];
                    event_id_format(x->ts_us, 1, i / BATCH + 1, x->index, eid);
                    correlate_engine_feed_event(e, fw.hits[h].rule, x, x->ts_us, eid, count_alert, &al);
                    nfed++;
                }
                tf += cpu_s() - f0;
            }
            tw = cpu_s() - t0;
        }
        if (r >= 0) feed[r] = tf;
        if (r >= 0) {
            base[r] = tb;
            with[r] = tw;
        }
        if (r == runs - 1) {
            alerts = al;
            matches = fw.matches;
            fed = nfed;
            correlate_engine_stats(e, SIZE_MAX, &st);
            buf out;
            buf_init(&out);
            double c0 = cpu_s();
            for (size_t c = 0; c < correlate_set_count(set); c++) correlate_state_encode(e, c, &out);
            ckpt_ms = (cpu_s() - c0) * 1000;
            state_bytes = out.len;
            buf_fini(&out);
        }
        correlate_engine_destroy(e);
        free(fb.hits);
        free(fw.hits);
        detect_worker_destroy(w);
    }
    double ratios[RUNS_MAX], direct[RUNS_MAX];
    for (int r = 0; r < runs; r++) {
        ratios[r] = with[r] / base[r];
        direct[r] = feed[r] / base[r];
    }
    qsort(direct, (size_t)runs, sizeof *direct, cmp_double);
    qsort(feed, (size_t)runs, sizeof *feed, cmp_double);
    qsort(base, (size_t)runs, sizeof *base, cmp_double);
    qsort(with, (size_t)runs, sizeof *with, cmp_double);
    qsort(ratios, (size_t)runs, sizeof *ratios, cmp_double);
    int mid = runs / 2;
    printf("{\"events\":%zu,\"rules\":%u,\"correlations\":%u,\"runs\":%d,\"base_ns_per_event\":%.0f,"
           "\"with_ns_per_event\":%.0f,\"overhead_pct\":%.1f,\"feed_ns_per_event\":%.1f,\"feed_overhead_pct\":%.2f,\"base_matches\":%llu,\"matches_fed\":%llu,"
           "\"correlation_alerts\":%llu,\"keys_held\":%llu,\"matches_held\":%llu,\"late\":%llu,\"missing_field\":%llu,"
           "\"checkpoint_encode_ms\":%.2f,\"checkpoint_bytes\":%zu}\n",
           nev, rep->loaded, rep->correlations, runs, base[mid] / (double)nev * 1e9, with[mid] / (double)nev * 1e9,
           (ratios[mid] - 1.0) * 100.0, feed[mid] / (double)nev * 1e9, direct[mid] * 100.0, (unsigned long long)matches, (unsigned long long)fed,
           (unsigned long long)alerts, (unsigned long long)st.keys, (unsigned long long)st.events,
           (unsigned long long)st.late, (unsigned long long)st.missing_field, ckpt_ms, state_bytes);
    correlate_set_destroy(set);
    detect_ruleset_unref(rs1);
    detect_loader_destroy(l1);
    detect_ruleset_unref(rs0);
    detect_loader_destroy(l0);
    free(cnt.per_rule);
    free(ev);
    normalizer_destroy(norm);
    json_parser_destroy(p);
    arena_fini(&a);
    return 0;
}
