/* bench/sim/main.c — mamori-agent-sim: N simulated agents over real mTLS speaking
 * protocol v1 (DESIGN §12, a contract): options, set-up (certificates, replay corpus),
 * worker threads, progress on stderr and, at the end, one JSON summary line on stdout.
 * Usage and every option: docs/simulator.md, or --help. */
#include "sim.h"
#include "sandbox.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MOD "sim"
#define EXIT_INCOMPLETE 1
#define EXIT_USAGE 2
#define EXIT_SETUP 3

static volatile sig_atomic_t signalled;
static void on_signal(int sig) { signalled = sig; }

static const char usage_text[] =
    "usage: mamori-agent-sim [--dev DIR | --server HOST:PORT --ca FILE --cert-dir DIR] --agents N\n"
    "                        [--events-per-agent M | --duration S] [--rate EPS] [--replay FILE...]\n"
    "                        [--format ecs|winlog|auto] [options]\n"
    "\n"
    "target:   --dev DIR            read DIR/dev.json, trust DIR/ca.pem, mint certificates from DIR/ca.key\n"
    "          --server HOST:PORT   ingest endpoint (overrides dev.json)\n"
    "          --ca FILE            CA that signed the server certificate\n"
    "          --cert-dir DIR       agent certificates (DIR/agents/<id>.pem+.key or DIR/<id>.pem+.key)\n"
    "          --server-name NAME   name the server certificate must match (default: the host)\n"
    "agents:   --agents N           simulated agents (required)\n"
    "          --agent-prefix P     ids are P-00000, P-00001, ... (default sim)\n"
    "          --first-agent K      number of the first agent (default 0)\n"
    "          --tenant T           tenant of minted certificates (default: dev.json's, else default)\n"
    "          --allow-shared-certs let agents reuse certificates when --cert-dir has fewer than N\n"
    "load:     --events-per-agent M each agent sends M events, then the run ends when all are acked\n"
    "          --duration S         send for S seconds (then wait for the acks)\n"
    "          --rate EPS           total events per second over all agents (default 0: as fast as possible)\n"
    "          --batch-events B     events per batch (default 500)\n"
    "          --flush-ms MS        with --rate: send a partial batch after MS (default 200)\n"
    "          --max-inflight N     cap on unacked batches per agent (default: the server's limit)\n"
    "          --idle               connect, HELLO, then only heartbeats for --duration\n"
    "events:   --format F           ecs (default), winlog (default with --replay), auto\n"
    "          --replay FILE...     OTRF zips / NDJSON / JSON files instead of synthetic events\n"
    "          --no-rebase          replay timestamps as recorded\n"
    "          --inject-malformed K every K-th event is invalid JSON\n"
    "          --seed S             synthetic activity seed (default 1)\n"
    "          --dump               write the synthetic events (--agents N, --events-per-agent M, agent by\n"
    "                               agent, as each would send them) to stdout as NDJSON; no server\n"
    "response: --sandbox DIR        the directory tree response actions may list, fetch from and delete in\n"
    "          --sandbox-procs N    start N long-running child processes to list and kill (default 0)\n"
    "          --isolation MODE     state (default: isolation is recorded and reported) or nft (isolate\n"
    "                               installs nftables rules allowing only the server; needs --agents 1)\n"
    "wire:     --no-compress        send NDJSON uncompressed (default: zstd)\n"
    "          --zstd-level L       compression level (default 1)\n"
    "run:      --threads T          worker threads (default 1)\n"
    "          --max-handshakes H   concurrent connection attempts over all threads (default 64)\n"
    "          --timeout S          give up after S seconds, exit 1 (default 600; duration + 60)\n"
    "          --progress-ms MS     progress line on stderr every MS (default 5000, 0 = off)\n"
    "          --log-level L        debug, info, warn, error (default info)\n"
    "output:   one JSON line on stdout; exit 0 when complete, 1 incomplete, 2 usage, 3 set-up error\n";

static MAMORI_NORETURN void usage_error(const char *fmt, ...) MAMORI_PRINTF(1, 2);
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mamori-agent-sim: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see --help)\n");
    exit(EXIT_USAGE);
}

static uint64_t parse_u64(const char *name, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "mamori-agent-sim: --%s: '%s' is not a number in %llu..%llu\n", name, s,
                (unsigned long long)min, (unsigned long long)max);
        exit(EXIT_USAGE);
    }
    return (uint64_t)v;
}

static double parse_double(const char *name, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "mamori-agent-sim: --%s: '%s' is not a number in %g..%g\n", name, s, min, max);
        exit(EXIT_USAGE);
    }
    return v;
}

enum {
    OPT_DEV = 256, OPT_SERVER, OPT_CA, OPT_CERT_DIR, OPT_SERVER_NAME, OPT_AGENTS, OPT_PREFIX, OPT_FIRST, OPT_TENANT,
    OPT_SHARED, OPT_EVENTS, OPT_DURATION, OPT_RATE, OPT_BATCH, OPT_FLUSH, OPT_INFLIGHT, OPT_IDLE, OPT_FORMAT,
    OPT_REPLAY, OPT_NO_REBASE, OPT_MALFORMED, OPT_SEED, OPT_NO_COMPRESS, OPT_ZSTD, OPT_THREADS, OPT_HANDSHAKES,
    OPT_TIMEOUT, OPT_PROGRESS, OPT_LOG, OPT_SANDBOX, OPT_SANDBOX_PROCS, OPT_ISOLATION, OPT_DUMP, OPT_HELP
};

static void parse_options(int argc, char **argv, sim_options *o, bool *timeout_given)
{
    static const struct option longs[] = {
        {"dev", required_argument, 0, OPT_DEV}, {"server", required_argument, 0, OPT_SERVER},
        {"ca", required_argument, 0, OPT_CA}, {"cert-dir", required_argument, 0, OPT_CERT_DIR},
        {"server-name", required_argument, 0, OPT_SERVER_NAME}, {"agents", required_argument, 0, OPT_AGENTS},
        {"agent-prefix", required_argument, 0, OPT_PREFIX}, {"first-agent", required_argument, 0, OPT_FIRST},
        {"tenant", required_argument, 0, OPT_TENANT}, {"allow-shared-certs", no_argument, 0, OPT_SHARED},
        {"events-per-agent", required_argument, 0, OPT_EVENTS}, {"duration", required_argument, 0, OPT_DURATION},
        {"rate", required_argument, 0, OPT_RATE}, {"batch-events", required_argument, 0, OPT_BATCH},
        {"flush-ms", required_argument, 0, OPT_FLUSH}, {"max-inflight", required_argument, 0, OPT_INFLIGHT},
        {"idle", no_argument, 0, OPT_IDLE}, {"format", required_argument, 0, OPT_FORMAT},
        {"replay", required_argument, 0, OPT_REPLAY}, {"no-rebase", no_argument, 0, OPT_NO_REBASE},
        {"inject-malformed", required_argument, 0, OPT_MALFORMED}, {"seed", required_argument, 0, OPT_SEED},
        {"no-compress", no_argument, 0, OPT_NO_COMPRESS}, {"zstd-level", required_argument, 0, OPT_ZSTD},
        {"threads", required_argument, 0, OPT_THREADS}, {"max-handshakes", required_argument, 0, OPT_HANDSHAKES},
        {"timeout", required_argument, 0, OPT_TIMEOUT}, {"progress-ms", required_argument, 0, OPT_PROGRESS},
        {"log-level", required_argument, 0, OPT_LOG}, {"help", no_argument, 0, OPT_HELP},
        {"sandbox", required_argument, 0, OPT_SANDBOX}, {"sandbox-procs", required_argument, 0, OPT_SANDBOX_PROCS},
        {"isolation", required_argument, 0, OPT_ISOLATION}, {"dump", no_argument, 0, OPT_DUMP},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->agent_prefix = "sim";
    o->threads = 1;
    o->batch_events = 500;
    o->flush_ms = 200;
    o->zstd_level = 1;
    o->max_handshakes = 64;
    o->timeout_s = 600;
    o->seed = 1;
    o->progress_ms = 5000;
    bool replay = false;
    const char **files = mamori_xcalloc((size_t)argc + 1, sizeof *files);
    size_t file_count = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case OPT_DEV: o->dev_dir = optarg; break;
        case OPT_SERVER: o->server = optarg; break;
        case OPT_CA: o->ca_file = optarg; break;
        case OPT_CERT_DIR: o->cert_dir = optarg; break;
        case OPT_SERVER_NAME: o->server_name = optarg; break;
        case OPT_AGENTS: o->agents = (uint32_t)parse_u64("agents", optarg, 1, 1000000); break;
        case OPT_PREFIX: o->agent_prefix = optarg; break;
        case OPT_FIRST: o->first_agent = (uint32_t)parse_u64("first-agent", optarg, 0, 99999999); break;
        case OPT_TENANT: o->tenant = optarg; break;
        case OPT_SHARED: o->allow_shared_certs = true; break;
        case OPT_EVENTS: o->events_per_agent = parse_u64("events-per-agent", optarg, 1, UINT64_MAX / 4); break;
        case OPT_DURATION: o->duration_s = parse_double("duration", optarg, 0.001, 1e7); break;
        case OPT_RATE: o->rate_eps = parse_double("rate", optarg, 0, 1e9); break;
        case OPT_BATCH: o->batch_events = (uint32_t)parse_u64("batch-events", optarg, 1, 1000000); break;
        case OPT_FLUSH: o->flush_ms = (uint32_t)parse_u64("flush-ms", optarg, 1, 3600000); break;
        case OPT_INFLIGHT: o->max_inflight = (uint32_t)parse_u64("max-inflight", optarg, 1, 1u << 20); break;
        case OPT_IDLE: o->idle = true; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "ecs") == 0) o->format = SIM_FORMAT_ECS;
            else if (strcmp(optarg, "winlog") == 0) o->format = SIM_FORMAT_WINLOG;
            else if (strcmp(optarg, "auto") == 0) o->format = SIM_FORMAT_AUTO;
            else usage_error("--format: '%s' is not ecs, winlog or auto", optarg);
            o->format_given = true;
            break;
        case OPT_REPLAY:
            replay = true;
            files[file_count++] = optarg;
            break;
        case OPT_NO_REBASE: o->no_rebase = true; break;
        case OPT_MALFORMED: o->inject_malformed = parse_u64("inject-malformed", optarg, 1, UINT64_MAX); break;
        case OPT_SEED: o->seed = parse_u64("seed", optarg, 0, UINT64_MAX); break;
        case OPT_NO_COMPRESS: o->no_compress = true; break;
        case OPT_ZSTD: o->zstd_level = (int)parse_u64("zstd-level", optarg, 1, 19); break;
        case OPT_THREADS: o->threads = (uint32_t)parse_u64("threads", optarg, 1, 256); break;
        case OPT_HANDSHAKES: o->max_handshakes = (uint32_t)parse_u64("max-handshakes", optarg, 1, 100000); break;
        case OPT_TIMEOUT:
            o->timeout_s = parse_double("timeout", optarg, 0.001, 1e7);
            *timeout_given = true;
            break;
        case OPT_PROGRESS: o->progress_ms = (uint32_t)parse_u64("progress-ms", optarg, 0, 3600000); break;
        case OPT_LOG: {
            enum log_level level;
            if (log_level_parse(optarg, &level) != 0) usage_error("--log-level: '%s' is not debug, info, warn or error", optarg);
            log_set_level(level);
            break;
        }
        case OPT_SANDBOX: o->sandbox_dir = optarg; break;
        case OPT_SANDBOX_PROCS:
            o->sandbox_procs = (uint32_t)parse_u64("sandbox-procs", optarg, 0, SANDBOX_PROCS_MAX);
            break;
        case OPT_ISOLATION:
            if (strcmp(optarg, "nft") == 0) o->isolation_nft = true;
            else if (strcmp(optarg, "state") == 0) o->isolation_nft = false;
            else usage_error("--isolation: '%s' is not state or nft", optarg);
            break;
        case OPT_DUMP: o->dump = true; break;
        case OPT_HELP:
        case 'h': fputs(usage_text, stdout); exit(0);
        default: exit(EXIT_USAGE);
        }
    }
    /* --replay FILE...: the files after the first are left as operands by getopt. */
    for (int i = optind; i < argc; i++) {
        if (!replay) usage_error("unexpected argument '%s'", argv[i]);
        files[file_count++] = argv[i];
    }
    o->replay_files = files;
    o->replay_count = file_count;

    if (!o->agents) usage_error("%s", "--agents N is required");
    if (o->dump) {
        if (!o->events_per_agent || file_count || o->duration_s > 0 || o->idle)
            usage_error("%s", "--dump needs --events-per-agent M (synthetic events; no --replay, --duration, --idle)");
        return;
    }
    if (!o->dev_dir && !(o->server && o->ca_file && o->cert_dir))
        usage_error("%s", "give --dev DIR, or --server HOST:PORT with --ca FILE and --cert-dir DIR");
    if (o->dev_dir && o->ca_file) usage_error("%s", "--ca: with --dev the CA is DIR/ca.pem");
    if (o->events_per_agent && o->duration_s > 0) usage_error("%s", "--events-per-agent and --duration exclude each other");
    if (o->idle && (o->duration_s <= 0 || o->events_per_agent))
        usage_error("%s", "--idle needs --duration S (and no --events-per-agent)");
    if (!o->idle && !o->events_per_agent && o->duration_s <= 0 && !file_count)
        usage_error("%s", "give --events-per-agent M or --duration S");
    if (o->isolation_nft && o->agents != 1)
        usage_error("%s", "--isolation nft isolates the host (its network namespace): it needs --agents 1");
    if (o->threads > o->agents) o->threads = o->agents;
    if (!o->format_given && file_count) o->format = SIM_FORMAT_WINLOG;
    if (!*timeout_given && o->duration_s > 0) o->timeout_s = o->duration_s + 60;
}

static void raise_fd_limit(uint32_t agents)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) LOG_WARN(MOD, "cannot raise RLIMIT_NOFILE: %s", strerror(errno));
    }
    if (rl.rlim_cur < (rlim_t)agents + 64)
        LOG_WARN(MOD, "RLIMIT_NOFILE is %llu for %u agents: raise the hard limit (ulimit -Hn) or some agents will "
                      "fail to connect",
                 (unsigned long long)rl.rlim_cur, agents);
}

typedef struct totals {
    uint64_t sent, acked, rejected, malformed, batches, batches_acked, acked_without_report, ack_mismatches,
        duplicates, resent_batches, bytes_raw, bytes_frames, connects, reconnects, connect_failures, server_closes,
        protocol_errors, commands, connected, finished, failed, seq_regressions, commands_repeated,
        results_succeeded, results_failed, file_bytes_sent, isolation_changes, isolated;
} totals;

static void sum(const sim_run *run, totals *t)
{
    memset(t, 0, sizeof *t);
    for (uint32_t i = 0; i < run->opt.threads; i++) {
        const sim_counters *c = &run->workers[i].counters;
#define SUM(f) t->f += STAT_GET(c, f)
        SUM(sent); SUM(acked); SUM(rejected); SUM(malformed); SUM(batches); SUM(batches_acked);
        SUM(acked_without_report); SUM(ack_mismatches); SUM(duplicates); SUM(resent_batches); SUM(bytes_raw);
        SUM(bytes_frames); SUM(connects); SUM(reconnects); SUM(connect_failures); SUM(server_closes);
        SUM(protocol_errors); SUM(commands); SUM(connected); SUM(finished); SUM(failed); SUM(seq_regressions);
        SUM(commands_repeated); SUM(results_succeeded); SUM(results_failed); SUM(file_bytes_sent);
        SUM(isolation_changes); SUM(isolated);
#undef SUM
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static const char *format_name(enum sim_format f)
{
    return f == SIM_FORMAT_WINLOG ? "winlog" : f == SIM_FORMAT_AUTO ? "auto" : "ecs";
}

static void print_summary(const sim_run *run, const totals *t, double seconds, bool complete, uint64_t connected_at_end,
                          const char *stop_reason)
{
    sim_histogram latency;
    memset(&latency, 0, sizeof latency);
    for (uint32_t i = 0; i < run->opt.threads; i++) histogram_merge(&latency, &run->workers[i].ack_latency_us);
    double cpu = cpu_seconds();
    double per_event = t->sent ? (double)t->bytes_raw / (double)t->sent : 0;
    double wire_per_event = t->sent ? (double)t->bytes_frames / (double)t->sent : 0;
    printf("{\"agents\":%u,\"sent\":%llu,\"acked\":%llu,\"rejected\":%llu,\"reconnects\":%llu,\"seconds\":%.3f,"
           "\"events_per_second\":%.1f,\"batches\":%llu,\"batches_acked\":%llu,\"duplicates\":%llu,"
           "\"resent_batches\":%llu,\"acked_without_report\":%llu,\"ack_mismatches\":%llu,\"malformed_injected\":%llu,"
           "\"connects\":%llu,\"connect_failures\":%llu,\"server_closes\":%llu,\"protocol_errors\":%llu,"
           "\"commands\":%llu,\"seq_regressions\":%llu,\"connected_at_end\":%llu,\"agents_finished\":%llu,"
           "\"agents_failed\":%llu,\"bytes_per_event\":%.1f,\"wire_bytes_per_event\":%.1f,\"wire_bytes\":%llu,"
           "\"ack_latency_us\":{\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu,\"batches\":%llu},"
           "\"cpu_seconds\":%.3f,\"events_per_cpu_second\":%.1f,\"format\":\"%s\",\"mode\":\"%s\",\"complete\":%s,"
           "\"stop\":\"%s\",\"response\":{\"commands\":%llu,\"repeated\":%llu,\"succeeded\":%llu,\"failed\":%llu,"
           "\"file_bytes_sent\":%llu,\"isolation_changes\":%llu,\"isolated_at_end\":%llu}}\n",
           run->opt.agents, (unsigned long long)t->sent, (unsigned long long)t->acked,
           (unsigned long long)t->rejected, (unsigned long long)t->reconnects, seconds,
           seconds > 0 ? (double)t->acked / seconds : 0.0, (unsigned long long)t->batches,
           (unsigned long long)t->batches_acked, (unsigned long long)t->duplicates,
           (unsigned long long)t->resent_batches, (unsigned long long)t->acked_without_report,
           (unsigned long long)t->ack_mismatches, (unsigned long long)t->malformed, (unsigned long long)t->connects,
           (unsigned long long)t->connect_failures, (unsigned long long)t->server_closes,
           (unsigned long long)t->protocol_errors, (unsigned long long)t->commands,
           (unsigned long long)t->seq_regressions, (unsigned long long)connected_at_end,
           (unsigned long long)t->finished, (unsigned long long)t->failed, per_event, wire_per_event,
           (unsigned long long)t->bytes_frames, (unsigned long long)histogram_percentile(&latency, 50),
           (unsigned long long)histogram_percentile(&latency, 99),
           (unsigned long long)histogram_percentile(&latency, 99.9), (unsigned long long)latency.max,
           (unsigned long long)latency.total, cpu, cpu > 0 ? (double)t->sent / cpu : 0.0, format_name(run->format),
           run->opt.idle ? "idle" : run->opt.events_per_agent ? "events" : "duration", complete ? "true" : "false",
           stop_reason, (unsigned long long)t->commands, (unsigned long long)t->commands_repeated,
           (unsigned long long)t->results_succeeded, (unsigned long long)t->results_failed,
           (unsigned long long)t->file_bytes_sent, (unsigned long long)t->isolation_changes,
           (unsigned long long)t->isolated);
    fflush(stdout);
}

/* --dump: each agent's synthetic events, as build_batch renders them (same hosts, seeds and
 * one-in-five Linux hosts in ECS), one per line, agent after agent. */
static int dump_events(const sim_options *opt)
{
    buf line;
    buf_init(&line);
    int64_t now_us = clock_wall_us();
    for (uint32_t i = 0; i < opt->agents; i++) {
        char agent_id[SIM_AGENT_ID_MAX + 1];
        snprintf(agent_id, sizeof agent_id, "%s-%05u", opt->agent_prefix, opt->first_agent + i);
        sim_host host;
        sim_host_init(&host, agent_id, opt->first_agent + i, sim_host_windows(opt->format, false, opt->first_agent + i));
        sim_model *m = model_create(&host, sim_model_seed(opt->seed, &host));
        for (uint64_t k = 0; k < opt->events_per_agent; k++) {
            buf_clear(&line);
            model_render(m, opt->format, now_us + (int64_t)k, &line);
            buf_putc(&line, '\n');
            if (fwrite(line.data, 1, line.len, stdout) != line.len) {
                fprintf(stderr, "mamori-agent-sim: --dump: writing stdout: %s\n", strerror(errno));
                model_destroy(m);
                buf_fini(&line);
                return EXIT_SETUP;
            }
        }
        model_destroy(m);
    }
    buf_fini(&line);
    return fflush(stdout) == 0 ? 0 : EXIT_SETUP;
}

int main(int argc, char **argv)
{
    static sim_run run;
    bool timeout_given = false;
    parse_options(argc, argv, &run.opt, &timeout_given);
    sim_options *opt = &run.opt;
    if (opt->dump) return dump_events(opt);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    raise_fd_limit(opt->agents);

    if (opt->replay_count) {
        if (replay_load(opt->replay_files, opt->replay_count, &run.corpus) != 0) return EXIT_SETUP;
        if (!opt->events_per_agent && opt->duration_s <= 0 && !opt->idle)
            opt->events_per_agent = replay_line_count(run.corpus); /* each agent sends the corpus once */
    }
    run.format = opt->format;
    if (sim_target_setup(opt, &run.target) != 0) {
        replay_destroy(run.corpus);
        return EXIT_SETUP;
    }
    /* The host response actions act on; children are started before any thread. */
    char err[512];
    if (sandbox_create(opt->sandbox_dir, &run.sandbox, err, sizeof err) != 0 ||
        sandbox_spawn_procs(run.sandbox, opt->sandbox_procs, err, sizeof err) != 0) {
        LOG_ERROR(MOD, "%s", err);
        sandbox_destroy(run.sandbox);
        sim_target_fini(&run.target);
        replay_destroy(run.corpus);
        return EXIT_SETUP;
    }
    if (opt->isolation_nft) {
        if (isolation_nft_probe(&run.isolated_at_start, err, sizeof err) != 0) {
            LOG_ERROR(MOD, "--isolation nft: %s", err);
            sandbox_destroy(run.sandbox);
            sim_target_fini(&run.target);
            replay_destroy(run.corpus);
            return EXIT_SETUP;
        }
        if (run.isolated_at_start) LOG_INFO(MOD, "--isolation nft: table inet mamori_isolation present: isolated");
    }
    LOG_INFO(MOD, "%u agents (%s..) -> %s (verify %s), tenant %s, %u thread(s), %s%s", opt->agents,
             run.target.identities[0].agent_id, opt->server ? opt->server : run.target.host, run.target.verify_name,
             run.target.identities[0].tenant, opt->threads,
             opt->idle ? "idle" : opt->events_per_agent ? "events per agent" : "duration",
             run.corpus ? ", replay" : "");

    run.workers = mamori_xcalloc(opt->threads, sizeof *run.workers);
    run.start_ms = clock_mono_ms();
    run.production_end_ms = opt->duration_s > 0 ? run.start_ms + (int64_t)(opt->duration_s * 1000) : INT64_MAX;
    int64_t deadline_ms = run.start_ms + (int64_t)(opt->timeout_s * 1000);
    uint32_t started = 0;
    int rc = 0;
    for (uint32_t i = 0; i < opt->threads && !rc; i++) {
        uint32_t first = (uint32_t)((uint64_t)opt->agents * i / opt->threads);
        uint32_t end = (uint32_t)((uint64_t)opt->agents * (i + 1) / opt->threads);
        rc = worker_init(&run.workers[i], &run, i, first, end - first);
        if (!rc) rc = -pthread_create(&run.workers[i].thread, NULL, worker_main, &run.workers[i]);
        if (!rc) started++;
    }
    if (rc) LOG_ERROR(MOD, "cannot start workers: %s", strerror(-rc));

    const char *stop_reason = rc ? "setup" : "done";
    totals t;
    int64_t next_progress = run.start_ms + opt->progress_ms;
    uint64_t last_acked = 0;
    int64_t last_progress = run.start_ms;
    uint64_t connected_at_end = 0;
    while (!rc) {
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
        int64_t now = clock_mono_ms();
        sum(&run, &t);
        connected_at_end = t.connected;
        if (t.finished + t.failed >= opt->agents) break;
        if (signalled) {
            stop_reason = "signal";
            break;
        }
        if (now >= deadline_ms) {
            stop_reason = "timeout";
            LOG_WARN(MOD, "timeout after %.0f s: %llu of %llu events acked", opt->timeout_s,
                     (unsigned long long)t.acked, (unsigned long long)t.sent);
            break;
        }
        if (opt->progress_ms && now >= next_progress) {
            double dt = (double)(now - last_progress) / 1000.0;
            LOG_INFO(MOD, "t=%.1fs connected=%llu/%u sent=%llu acked=%llu rejected=%llu rate=%.0f ev/s reconnects=%llu "
                          "connect_failures=%llu commands=%llu results=%llu isolated=%llu",
                     (double)(now - run.start_ms) / 1000.0, (unsigned long long)t.connected, opt->agents,
                     (unsigned long long)t.sent, (unsigned long long)t.acked, (unsigned long long)t.rejected,
                     dt > 0 ? (double)(t.acked - last_acked) / dt : 0.0, (unsigned long long)t.reconnects,
                     (unsigned long long)t.connect_failures, (unsigned long long)t.commands,
                     (unsigned long long)(t.results_succeeded + t.results_failed), (unsigned long long)t.isolated);
            last_acked = t.acked;
            last_progress = now;
            next_progress = now + opt->progress_ms;
        }
    }
    double seconds = (double)(clock_mono_ms() - run.start_ms) / 1000.0;
    atomic_store(&run.stop, true);
    for (uint32_t i = 0; i < started; i++) pthread_join(run.workers[i].thread, NULL);
    sum(&run, &t);
    bool complete = !rc && t.failed == 0 && t.finished >= opt->agents && t.acked == t.sent &&
                    (!opt->idle || connected_at_end == opt->agents);
    print_summary(&run, &t, seconds, complete, connected_at_end, stop_reason);

    for (uint32_t i = 0; i < opt->threads; i++)
        if (run.workers[i].agents) worker_fini(&run.workers[i]);
    free(run.workers);
    sandbox_destroy(run.sandbox);
    sim_target_fini(&run.target);
    replay_destroy(run.corpus);
    free(opt->replay_files);
    return rc ? EXIT_SETUP : complete ? 0 : EXIT_INCOMPLETE;
}
