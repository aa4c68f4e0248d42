/* cli/cmd_scan.c — `mamorictl scan` (contract, DESIGN §4): the live detection engine run
 * offline over files of events. Reads JSON/NDJSON (one object, concatenated objects, one
 * per line, pretty-printed, or a top-level array of objects), normalizes each event as the
 * server does (tenant "offline", agent "scan"), evaluates every rule, writes one NDJSON
 * alert per match to stdout and a summary to stderr. One worker, one thread; events are
 * normalized and detected in batches of 32 and the arena is reset after each batch, so
 * memory stays flat however large the input. Correlation rules (detect/correlate.h) see the
 * matches of their base rules after the whole input was read, sorted by event time, so
 * they fire as on a stream where nothing arrives late; only those matches are kept. */
#include "cli.h"
#include "page_ahead.h"

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/event.h"
#include "core/json.h"
#include "detect/correlate.h"
#include "detect/detect.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCAN_TENANT "offline"
#define SCAN_AGENT "scan"
#define OUTPUT_FLUSH_BYTES (256 * 1024)
#define REJECT_WARNINGS_MAX 10
/* Events normalized together, then detected together. 64 OTRF events (~350 KB of DOM,
 * texts and fields) stay in L2 until detection reads them; with 256 (~1.4 MB) detection
 * took their misses: 6-13% slower, 2-6% end to end (bench_detect_bench --only ab
 * --ab-batch 256, docs/detection.md §10.15). 32 against 64: detection 2.5% faster, end to
 * end 1.5% (5 and 3 runs, §10.23); 24 and 48 were not. */
#define SCAN_BATCH_EVENTS 32
/* The batch arena's first chunk: a batch of 64 OTRF lines takes ~0.5 MB of DOM, decoded
 * strings and fields, but lines of some sources are far longer; a chunk overflowing the first
 * is freed on every reset (core/arena.c), so a first chunk too small makes every batch
 * allocate, fault in and free its overflow again. */
#define SCAN_ARENA_BYTES (8u << 20)
#define SCAN_INVALID_REPORTED 10 /* invalid JSON values named on stderr; the rest are counted */
#define PROGRESS_INTERVAL_US 500000

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mamorictl scan --rules PATH [--rules PATH…] [options] FILE…\n"
            "\n"
            "Runs the Sigma rules under each --rules PATH (file or directory) over events read\n"
            "from each FILE ('-' for stdin): JSON objects, concatenated or one per line, or a JSON\n"
            "array of objects. Writes one NDJSON alert per match to stdout:\n"
            "  {\"rule\":{\"id\",\"title\",\"level\",\"status\",\"tags\",\"attack\",\"file\",\"line\"},\n"
            "   \"event\":{…normalized ECS event…},\"source\":{\"file\",\"index\"}}\n"
            "Correlation rules in the rule files run over the matches of their base rules in\n"
            "event-time order once the input is read; each correlation alert is one line:\n"
            "  {\"rule\":{…the correlation…},\"correlation\":{\"id\",\"type\",\"timespan\",\"group\",\n"
            "   \"window\":{\"first\",\"last\"},\"value\",\"event_count\",\"events\":[\"FILE#INDEX\"…]}}\n"
            "and a summary to stderr. Exit status 0 on success, 1 on bad input or rules that cannot\n"
            "be compiled, 2 on usage errors.\n"
            "\n"
            "options:\n"
            "  --format auto|ecs|winlog  input format (default auto, per event)\n"
            "  --placeholder NAME=VALUE  value for the expand modifier's %%NAME%% (repeat to add)\n"
            "  --include-deprecated      load status: deprecated rules too\n"
            "  --include-unsupported     load status: unsupported rules too\n"
            "  --rule-stats              print alerts per rule to stderr at the end\n"
            "  --quiet                   summary only: do not list rejected rules\n");
}

typedef struct scan {
    detect_worker *worker;
    normalizer *norm;
    json_parser *parser;
    arena mem;
    enum event_format format;
    event_stamp stamp;
    buf out;
    uint64_t events, rejected, alerts;
    uint64_t invalid; /* JSON values that did not parse (also in rejected) */
    uint64_t *alerts_by_rule;
    size_t rule_count;
    bool progress;
    int64_t started_us, last_progress_us;
    uint32_t reject_warnings;
    double readahead_cpu_s; /* the read-ahead threads' CPU (page_ahead.h), in the per-core figure */
    /* the batch being built: events normalized into mem, detected when full */
    mamori_event batch[SCAN_BATCH_EVENTS];
    uint32_t batch_index[SCAN_BATCH_EVENTS]; /* position of each event in its file */
    size_t batch_count;
    const char *batch_file;
    /* correlations: matches of their base rules, fed in event-time order at the end */
    correlate_set *corr;
    struct scan_match *matches;
    size_t match_count, match_cap;
    uint64_t corr_alerts, held_back; /* correlation alerts; base matches not alerting alone */
    size_t corr_matches;
    correlate_stats corr_stats;
    uint64_t *corr_alerts_by_rule; /* emitted alerts per correlation */
} scan;

struct scan_match {
    correlate_match *m;
    int64_t time_us;
    uint64_t order; /* input order: ties in time keep it */
};

static void flush_out(scan *s, bool force)
{
    if (!force && s->out.len < OUTPUT_FLUSH_BYTES) return;
    if (s->out.len) fwrite(s->out.data, 1, s->out.len, stdout);
    buf_clear(&s->out);
    if (force) fflush(stdout);
}

static void progress(scan *s, bool final)
{
    if (!s->progress) return;
    int64_t now = clock_mono_us();
    if (!final && now - s->last_progress_us < PROGRESS_INTERVAL_US) return;
    s->last_progress_us = now;
    double secs = (double)(now - s->started_us) / 1e6;
    if (final) {
        fprintf(stderr, "\r\033[K");
        return;
    }
    fprintf(stderr, "\r\033[Kscan: %llu events, %llu alerts, %.0f events/s", (unsigned long long)s->events,
            (unsigned long long)s->alerts, secs > 0 ? (double)s->events / secs : 0.0);
    fflush(stderr);
}

/* A match of a rule some correlation uses: kept (self-contained) for the end. Offline
 * events have no stored id: a correlation alert names them FILE#INDEX, as the single-event
 * alerts' "source" does. */
static void keep_match(scan *s, const mamori_event *ev, uint32_t index, const detect_rule *r)
{
    char id[4096];
    snprintf(id, sizeof id, "%s#%u", s->batch_file, index);
    if (s->match_count == s->match_cap) {
        s->match_cap = s->match_cap ? s->match_cap * 2 : 1024;
        s->matches = mamori_xrealloc(s->matches, s->match_cap * sizeof *s->matches);
    }
    s->matches[s->match_count] = (struct scan_match){
        .m = correlate_match_create(s->corr, r, ev, ev->ts_us, id), .time_us = ev->ts_us, .order = s->match_count};
    s->match_count++;
}

static void write_alert(void *ctx, size_t event_index, const detect_rule *r)
{
    scan *s = ctx;
    mamori_event *ev = &s->batch[event_index];
    if (s->corr && correlate_set_uses_rule(s->corr, r)) {
        keep_match(s, ev, s->batch_index[event_index], r);
        if (!correlate_set_rule_standalone(s->corr, r)) {
            s->held_back++;
            return;
        }
    }
    buf_puts(&s->out, "{\"rule\":");
    detect_rule_write_json(&s->out, r);
    buf_puts(&s->out, ",\"event\":");
    char why[160];
    if (!ev->json && normalize_event_json(s->norm, &s->mem, ev, why, sizeof why) != 0)
        fprintf(stderr, "mamorictl scan: %s event %u: %s\n", s->batch_file, s->batch_index[event_index], why);
    if (ev->json) buf_append(&s->out, ev->json, ev->json_len);
    else buf_puts(&s->out, "null");
    buf_puts(&s->out, ",\"source\":{\"file\":");
    json_write_string(&s->out, s->batch_file, strlen(s->batch_file));
    buf_puts(&s->out, ",\"index\":");
    buf_put_u64(&s->out, s->batch_index[event_index]);
    buf_puts(&s->out, "}}\n");
    s->alerts_by_rule[r->index]++;
    s->alerts++;
}

/* Detects the batch, writes its alerts, and frees its memory. */
static void flush_batch(scan *s)
{
    if (s->batch_count) detect_eval_batch(s->worker, s->batch, s->batch_count, write_alert, s);
    s->batch_count = 0;
    arena_reset(&s->mem);
    flush_out(s, false);
    progress(s, false);
}

static void one_event(scan *s, const char *file, const json_value *raw, uint32_t index)
{
    char why[160];
    s->events++;
    s->batch_file = file;
    mamori_event *ev = &s->batch[s->batch_count];
    if (normalize_event(s->norm, &s->mem, s->format, raw, &s->stamp, index, ev, why, sizeof why) != 0) {
        s->rejected++;
        if (s->reject_warnings++ < REJECT_WARNINGS_MAX)
            fprintf(stderr, "mamorictl scan: %s event %u skipped: %s\n", file, index, why);
        return;
    }
    s->batch_index[s->batch_count++] = index;
}

/* Reads a whole file: mmap for regular files, read() for pipes and stdin. */
static int read_input(const char *path, char **data, size_t *len, bool *mapped)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    *mapped = false;
    if (fd != STDIN_FILENO && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (p == MAP_FAILED) return -errno;
        madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
        *data = p;
        *len = (size_t)st.st_size;
        *mapped = true;
        return 0;
    }
    size_t cap = 1 << 20, n = 0;
    char *b = mamori_xmalloc(cap);
    for (;;) {
        if (n == cap) b = mamori_xrealloc(b, cap *= 2);
        ssize_t got = read(fd, b + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(b);
            if (fd != STDIN_FILENO) close(fd);
            return -e;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    if (fd != STDIN_FILENO) close(fd);
    *data = b;
    *len = n;
    return 0;
}

static int scan_file(scan *s, const char *path, uint64_t seq)
{
    char *data = NULL;
    size_t len = 0;
    bool mapped = false;
    int rc = read_input(path, &data, &len, &mapped);
    if (rc) {
        fprintf(stderr, "mamorictl scan: %s: %s\n", path, strerror(-rc));
        return 1;
    }
    s->stamp.seq = seq;
    page_ahead *ahead = mapped ? page_ahead_start(data, len, PAGE_AHEAD_WINDOW) : NULL;
    size_t pos = 0;
    uint32_t index = 0;
    int status = 0;
    for (;;) {
        page_ahead_advance(ahead, pos);
        /* the raw DOM lives in the batch arena with the events that point into it */
        if (s->batch_count >= SCAN_BATCH_EVENTS) flush_batch(s);
        json_value *v = arena_alloc(&s->mem, sizeof *v);
        json_error jerr;
        rc = json_parse_next(s->parser, &s->mem, data, len, &pos, v, &jerr);
        if (rc == -ENODATA) break;
        if (rc) {
            /* one broken value loses nothing else: skip to the next line (JSON lines resync
             * there; in one big document the rest is unreadable anyway) and go on */
            const char *nl = jerr.offset < len ? memchr(data + jerr.offset, '\n', len - jerr.offset) : NULL;
            s->invalid++;
            s->events++;
            s->rejected++;
            index++;
            status = 1;
            if (s->invalid <= SCAN_INVALID_REPORTED) {
                size_t line = 1;
                for (const char *c = data; (c = memchr(c, '\n', (size_t)(data + jerr.offset - c))) != NULL; c++) line++;
                fprintf(stderr, "mamorictl scan: %s: invalid JSON at line %zu (byte offset %zu): %s%s\n", path, line,
                        jerr.offset, jerr.msg, nl ? "; skipped to the next line" : "");
            } else if (s->invalid == SCAN_INVALID_REPORTED + 1) {
                fprintf(stderr, "mamorictl scan: more invalid JSON; counted in the summary only\n");
            }
            if (!nl) break;
            pos = (size_t)(nl - data) + 1;
            continue;
        }
        if (v->type == JSON_ARRAY) {
            for (uint32_t i = 0; i < v->len; i++) {
                one_event(s, path, &v->items[i], index++);
                /* a large array: detect what is full, keeping the array's DOM alive */
                if (s->batch_count == SCAN_BATCH_EVENTS) {
                    detect_eval_batch(s->worker, s->batch, s->batch_count, write_alert, s);
                    s->batch_count = 0;
                    flush_out(s, false);
                }
            }
        } else {
            one_event(s, path, v, index++);
        }
    }
    flush_batch(s); /* the file's text is unmapped below: nothing may point into it */
    s->readahead_cpu_s += page_ahead_stop(ahead);
    if (mapped) munmap(data, len);
    else free(data);
    return status;
}

static void write_correlation_alert(void *ctx, const correlate_alert *a)
{
    scan *s = ctx;
    if (!a->emit) return; /* only feeds a chain */
    s->corr_alerts_by_rule[a->rule->info.index]++;
    buf_puts(&s->out, "{\"rule\":");
    detect_rule_write_json(&s->out, &a->rule->info);
    buf_puts(&s->out, ",\"correlation\":");
    correlate_alert_write_json(&s->out, a);
    buf_puts(&s->out, "}\n");
    s->corr_alerts++;
    flush_out(s, false);
}

static int by_time(const void *a, const void *b)
{
    const struct scan_match *x = a, *y = b;
    if (x->time_us != y->time_us) return x->time_us < y->time_us ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Feeds the kept matches in event-time order. */
static void run_correlations(scan *s)
{
    qsort(s->matches, s->match_count, sizeof *s->matches, by_time);
    s->corr_alerts_by_rule = mamori_xcalloc(correlate_set_count(s->corr), sizeof *s->corr_alerts_by_rule);
    correlate_options opt;
    correlate_options_default(&opt);
    correlate_engine *e = correlate_engine_create(s->corr, &opt);
    for (size_t i = 0; i < s->match_count; i++) {
        correlate_engine_feed(e, s->matches[i].m, write_correlation_alert, s);
        correlate_match_destroy(s->matches[i].m);
    }
    flush_out(s, true);
    correlate_engine_stats(e, SIZE_MAX, &s->corr_stats);
    s->corr_matches = s->match_count;
    correlate_engine_destroy(e);
    free(s->matches);
    s->matches = NULL;
    s->match_count = 0;
}

struct rule_count {
    const detect_rule *rule;
    uint64_t alerts;
};

static int by_alerts(const void *a, const void *b)
{
    const struct rule_count *x = a, *y = b;
    return x->alerts < y->alerts ? 1 : x->alerts > y->alerts ? -1 : 0;
}

static void print_rule_stats(const scan *s, const detect_ruleset *rs)
{
    size_t n = 0;
    struct rule_count *rows = mamori_xcalloc(s->rule_count ? s->rule_count : 1, sizeof *rows);
    for (size_t i = 0; i < s->rule_count; i++)
        if (s->alerts_by_rule[i]) rows[n++] = (struct rule_count){detect_ruleset_rule(rs, i), s->alerts_by_rule[i]};
    qsort(rows, n, sizeof *rows, by_alerts);
    fprintf(stderr, "alerts per rule (%zu rules fired):\n", n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %8llu  %-8s %s  %s\n", (unsigned long long)rows[i].alerts, rows[i].rule->level_name,
                rows[i].rule->id, rows[i].rule->title);
    free(rows);
}

int cmd_scan(int argc, char **argv)
{
    detect_options opt;
    detect_options_default(&opt);
    struct cli_placeholders *ph = NULL;
    const char **rule_paths = mamori_xcalloc((size_t)argc, sizeof *rule_paths);
    const char **files = mamori_xcalloc((size_t)argc, sizeof *files);
    size_t rule_path_count = 0, file_count = 0;
    enum event_format format = EVENT_FORMAT_AUTO;
    bool quiet = false, rule_stats = false;
    int status = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            status = 0;
            goto out;
        } else if (!strcmp(a, "--rules") && i + 1 < argc) {
            rule_paths[rule_path_count++] = argv[++i];
        } else if (!strcmp(a, "--format") && i + 1 < argc) {
            if (event_format_parse(argv[++i], &format)) {
                fprintf(stderr, "mamorictl scan: --format must be auto, ecs or winlog, not '%s'\n", argv[i]);
                goto out;
            }
        } else if (!strcmp(a, "--placeholder") && i + 1 < argc) {
            if (cli_placeholder_add(&ph, argv[++i])) {
                fprintf(stderr, "mamorictl scan: --placeholder wants NAME=VALUE, got '%s'\n", argv[i]);
                goto out;
            }
        } else if (!strcmp(a, "--include-deprecated")) {
            opt.include_deprecated = true;
        } else if (!strcmp(a, "--include-unsupported")) {
            opt.include_unsupported = true;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--rule-stats")) {
            rule_stats = true;
        } else if (!strcmp(a, "--")) {
            while (++i < argc) files[file_count++] = argv[i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mamorictl scan: unknown option '%s'\n", a);
            usage(stderr);
            goto out;
        } else {
            files[file_count++] = a;
        }
    }
    if (rule_path_count == 0 || file_count == 0) {
        fprintf(stderr, "mamorictl scan: %s\n", rule_path_count == 0 ? "--rules PATH is required" : "no input FILE");
        usage(stderr);
        goto out;
    }
    status = 1;
    cli_placeholders_apply(ph, &opt);
    opt.correlations = true;
    detect_loader *loader = detect_loader_create(&opt);
    char err[512];
    for (size_t i = 0; i < rule_path_count; i++) {
        if (detect_loader_add_path(loader, rule_paths[i], err, sizeof err)) {
            fprintf(stderr, "mamorictl scan: rules: %s\n", err);
            detect_loader_destroy(loader);
            goto out;
        }
    }
    detect_ruleset *rs = NULL;
    if (detect_loader_build(loader, &rs, err, sizeof err)) {
        fprintf(stderr, "mamorictl scan: %s\n", err);
        detect_loader_destroy(loader);
        goto out;
    }
    correlate_set *corr = NULL;
    if (correlate_set_build(loader, rs, &corr)) {
        fprintf(stderr, "mamorictl scan: cannot resolve correlation rules\n");
        detect_ruleset_unref(rs);
        detect_loader_destroy(loader);
        goto out;
    }
    /* inputs must exist before any work: a typo should not cost a long run */
    for (size_t i = 0; i < file_count; i++) {
        if (strcmp(files[i], "-") != 0 && access(files[i], R_OK) != 0) {
            fprintf(stderr, "mamorictl scan: %s: %s\n", files[i], strerror(errno));
            correlate_set_destroy(corr);
            detect_ruleset_unref(rs);
            detect_loader_destroy(loader);
            goto out;
        }
    }

    scan s;
    memset(&s, 0, sizeof s);
    s.worker = detect_worker_create();
    if (detect_worker_bind(s.worker, rs)) {
        fprintf(stderr, "mamorictl scan: cannot allocate Hyperscan scratch\n");
        correlate_set_destroy(corr);
        detect_worker_destroy(s.worker);
        detect_ruleset_unref(rs);
        detect_loader_destroy(loader);
        goto out;
    }
    detect_worker_set_warm(s.worker, true); /* each batch is parsed and normalized right before */
    s.norm = normalizer_create();
    normalizer_set_defer_json(s.norm, true); /* written for alerting events only */
    s.parser = json_parser_create();
    arena_init(&s.mem, SCAN_ARENA_BYTES);
    buf_init(&s.out);
    s.format = format;
    s.corr = correlate_set_count(corr) ? corr : NULL;
    s.stamp.tenant = SCAN_TENANT;
    s.stamp.agent_id = SCAN_AGENT;
    s.stamp.agent_hash = event_agent_hash(SCAN_TENANT, SCAN_AGENT);
    s.stamp.received_us = clock_wall_us();
    s.rule_count = detect_ruleset_rule_count(rs);
    s.alerts_by_rule = mamori_xcalloc(s.rule_count ? s.rule_count : 1, sizeof *s.alerts_by_rule);
    s.progress = isatty(STDERR_FILENO) == 1;
    s.started_us = s.last_progress_us = clock_mono_us();
    /* this thread's CPU time and the read-ahead threads': the per-core figure, whatever the
     * machine's load */
    int64_t cpu0_us = clock_thread_cpu_us();

    status = 0;
    for (size_t i = 0; i < file_count && status == 0; i++) status = scan_file(&s, files[i], i + 1);
    flush_out(&s, true);
    if (s.corr) run_correlations(&s);
    progress(&s, true);
    double secs = (double)(clock_mono_us() - s.started_us) / 1e6;
    double cpu_scan = (double)(clock_thread_cpu_us() - cpu0_us) / 1e6;
    double cpu = cpu_scan + s.readahead_cpu_s;

    const detect_report *report = detect_loader_report(loader);
    cli_print_rule_report(stderr, report, !quiet, false);
    fprintf(stderr,
            "scan: %llu events (%llu rejected) from %zu files, %llu alerts, %.3f s, %.0f events/s; CPU %.3f s "
            "(%.3f s scanning, %.3f s reading ahead), %.0f events/s per core\n",
            (unsigned long long)s.events, (unsigned long long)s.rejected, file_count, (unsigned long long)s.alerts, secs,
            secs > 0 ? (double)s.events / secs : 0.0, cpu, cpu_scan, s.readahead_cpu_s,
            cpu > 0 ? (double)s.events / cpu : 0.0);
    if (s.corr) {
        const correlate_stats *cs = &s.corr_stats;
        fprintf(stderr,
                "correlations: %zu loaded, %llu alerts; %zu base matches (%llu not alerting alone), %llu late, "
                "%llu missing a group-by or value field, %llu not numeric, %llu keys and %llu matches evicted\n",
                correlate_set_count(corr), (unsigned long long)s.corr_alerts, s.corr_matches,
                (unsigned long long)s.held_back, (unsigned long long)cs->late, (unsigned long long)cs->missing_field,
                (unsigned long long)cs->not_numeric, (unsigned long long)cs->evicted_keys,
                (unsigned long long)cs->evicted_events);
    }
    if (rule_stats) print_rule_stats(&s, rs);
    if (rule_stats && s.corr) {
        fprintf(stderr, "alerts per correlation:\n");
        for (size_t i = 0; i < correlate_set_count(corr); i++) {
            const correlate_rule *c = correlate_set_rule(corr, i);
            fprintf(stderr, "  %8llu  %-8s %-16s %s  %s\n", (unsigned long long)s.corr_alerts_by_rule[i],
                    c->info.level_name, correlate_type_name(c->type), c->info.id, c->info.title);
        }
    }
    free(s.corr_alerts_by_rule);

    free(s.alerts_by_rule);
    buf_fini(&s.out);
    arena_fini(&s.mem);
    json_parser_destroy(s.parser);
    normalizer_destroy(s.norm);
    detect_worker_destroy(s.worker);
    correlate_set_destroy(corr);
    detect_ruleset_unref(rs);
    detect_loader_destroy(loader);
out:
    cli_placeholders_free(ph);
    free(rule_paths);
    free(files);
    return status;
}
