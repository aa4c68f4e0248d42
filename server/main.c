/* server/main.c — mamorid: loads the configuration (or prepares a development node), opens
 * the store, starts the bus (embedded or Kafka), the store writer, live detection and
 * ingest, logs a stats line every 10 s, reloads the rules on SIGHUP, and shuts down in order on
 * SIGINT/SIGTERM: stop ingest (no new batches), drain the bus into the store and through
 * detection, close the store. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "api/api.h"
#include "core/clock.h"
#include "core/crash.h"
#include "core/failpoint.h"
#include "core/log.h"
#include "internal.h"
#include "response.h"

#define MOD "mamorid"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mamorid [--config FILE] [--set KEY=VALUE]... [--rules PATH]...\n"
            "       mamorid --dev DIR [--ingest-port P] [--api-port Q] [--config FILE] [--set KEY=VALUE]... [--rules PATH]...\n"
            "       (either form) [--bus embedded|kafka] [--kafka-bootstrap HOST:PORT] [--roles LIST]\n"
            "       mamorid --check-config FILE\n"
            "       mamorid --print-config [--config FILE]\n"
            "\n"
            "  --config FILE      YAML configuration (docs/configuration.md; example deploy/mamorid.yaml)\n"
            "  --set KEY=VALUE    override one key, e.g. --set store.sync=false\n"
            "  --rules PATH       add a Sigma rule file or directory to detect.rules (repeatable)\n"
            "  --dev DIR          development node on loopback: PKI, data and admin key in DIR\n"
            "  --ingest-port P    with --dev: agent port (default 7443; 0 picks a free one)\n"
            "  --api-port Q       with --dev: API port written to dev.json (default 8443)\n"
            "  --bus KIND         embedded (default) or kafka: shortcut for --set bus.type=KIND\n"
            "  --kafka-bootstrap A  Kafka brokers: shortcut for --set bus.kafka.bootstrap=A (docs/kafka.md)\n"
            "  --roles LIST       what this process runs: ingest,detect,store,api,rulesync (default all;\n"
            "                     split roles need --bus kafka; docs/scaling.md): shortcut for --set node.roles=LIST\n"
            "  --check-config F   validate F and exit (0 valid, 2 invalid)\n"
            "  --print-config     print the effective configuration and exit\n"
            "  --version          print the version\n");
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void log_stats(ingest *in, bus *b, store_worker *w, store *db, detect_rt *rt, ingest_stats *prev,
                      double seconds)
{
    ingest_stats s = {0};
    if (in) ingest_get_stats(in, &s);
    bus_stats bs;
    bus_get_stats(b, &bs);
    store_stats ss;
    store_get_stats(db, &ss);
    uint64_t events = s.events_accepted - prev->events_accepted;
    uint64_t acks = s.ack_latency_count - prev->ack_latency_count;
    double ack_ms = acks ? (double)(s.ack_latency_us_sum - prev->ack_latency_us_sum) / (double)acks / 1000.0 : 0;
    uint64_t groups = w ? atomic_load(&w->groups) : 0;
    detect_rt_summary ds = {0};
    if (rt) detect_rt_get_summary(rt, &ds);
    LOG_INFO(MOD,
             "stats agents=%llu connections=%llu events_per_s=%.0f events_total=%llu rejected_total=%llu "
             "batches_acked=%llu ack_ms_avg=%.2f violations=%llu handshake_failures=%llu backpressure_pauses=%llu "
             "bus_queued=%llu bus_inflight_mib=%.1f store_groups=%llu store_events=%llu store_sst_mib=%.1f "
             "index_pending=%llu detect_generation=%llu detect_rules=%llu detect_events=%llu alerts=%llu "
             "detect_pending=%llu",
             (unsigned long long)s.agents_connected, (unsigned long long)s.connections_active,
             (double)events / seconds, (unsigned long long)s.events_accepted, (unsigned long long)s.events_rejected,
             (unsigned long long)s.batches_acked, ack_ms, (unsigned long long)s.protocol_violations,
             (unsigned long long)s.handshakes_failed, (unsigned long long)s.backpressure_pauses,
             (unsigned long long)bs.queued_batches, (double)bs.inflight_bytes / 1048576.0,
             (unsigned long long)groups, (unsigned long long)(w ? atomic_load(&w->events) : 0),
             (double)ss.total_sst_bytes / 1048576.0, (unsigned long long)ss.index_entries_pending,
             (unsigned long long)ds.generation, (unsigned long long)ds.rules, (unsigned long long)ds.events,
             (unsigned long long)ds.alerts, (unsigned long long)ds.pending_batches);
    *prev = s;
}

static int durable_seq(void *ctx, uint64_t tenant_hash, uint64_t agent_hash, uint64_t *seq)
{
    return store_agent_durable_seq(ctx, tenant_hash, agent_hash, seq);
}

static void fill_store_options(const mamori_config *cfg, store_options *so, store_tenant_retention *ret)
{
    store_options_default(so);
    so->path = cfg->store.path;
    so->sync = cfg->store.sync;
    so->retention_days = cfg->store.retention_days;
    so->block_cache_bytes = cfg->store.block_cache_bytes;
    so->write_buffer_bytes = cfg->store.write_buffer_bytes;
    so->zstd_level = (int)cfg->store.zstd_level;
    so->zstd_dict_bytes = cfg->store.zstd_dict_bytes;
    so->index_slice_ms = cfg->store.index_slice_ms;
    so->index_slice_max_bytes = cfg->store.index_slice_max_bytes;
    for (uint32_t i = 0; i < cfg->store.tenant_count; i++) {
        ret[i].tenant = cfg->store.tenants[i].name;
        ret[i].days = cfg->store.tenants[i].retention_days ? cfg->store.tenants[i].retention_days
                                                           : cfg->store.retention_days;
    }
    so->tenant_retention = ret;
    so->tenant_retention_count = cfg->store.tenant_count;
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'},      {"set", required_argument, NULL, 's'},
        {"dev", required_argument, NULL, 'd'},         {"ingest-port", required_argument, NULL, 'i'},
        {"api-port", required_argument, NULL, 'a'},    {"check-config", required_argument, NULL, 'k'},
        {"print-config", no_argument, NULL, 'p'},      {"version", no_argument, NULL, 'v'},
        {"rules", required_argument, NULL, 'r'},       {"help", no_argument, NULL, 'h'},
        {"bus", required_argument, NULL, 'B'},         {"kafka-bootstrap", required_argument, NULL, 'K'},
        {"roles", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *dev_dir = NULL, *check_path = NULL, *bus_arg = NULL, *kafka_arg = NULL,
               *roles_arg = NULL;
    const char *sets[64], *rules[256];
    int set_count = 0, rule_count = 0;
    bool print_config = false;
    long ingest_port_arg = 7443, api_port = 8443;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:s:d:h", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 's':
            if (set_count == 64) {
                fprintf(stderr, "mamorid: too many --set options\n");
                return 2;
            }
            sets[set_count++] = optarg;
            break;
        case 'r':
            if (rule_count == 256) {
                fprintf(stderr, "mamorid: too many --rules options\n");
                return 2;
            }
            rules[rule_count++] = optarg;
            break;
        case 'd': dev_dir = optarg; break;
        case 'B': bus_arg = optarg; break;
        case 'K': kafka_arg = optarg; break;
        case 'R': roles_arg = optarg; break;
        case 'i': ingest_port_arg = strtol(optarg, NULL, 10); break;
        case 'a': api_port = strtol(optarg, NULL, 10); break;
        case 'k': check_path = optarg; break;
        case 'p': print_config = true; break;
        case 'v': printf("mamorid 0.1.0 (agent protocol 1)\n"); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mamorid: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (ingest_port_arg < 0 || ingest_port_arg > 65535 || api_port < 0 || api_port > 65535) {
        fprintf(stderr, "mamorid: ports must be 0-65535\n");
        return 2;
    }

    mamori_config cfg;
    char err[1024];
    config_defaults(&cfg);
    if (check_path) {
        int rc = config_load_file(&cfg, check_path, err, sizeof err);
        if (rc) {
            fprintf(stderr, "mamorid: %s\n", err);
            config_free(&cfg);
            return 2;
        }
        printf("%s: configuration valid\n", check_path);
        config_free(&cfg);
        return 0;
    }
    if (config_path && config_load_file(&cfg, config_path, err, sizeof err)) {
        fprintf(stderr, "mamorid: %s\n", err);
        return 2;
    }
    /* --dev fills in its addresses, PKI and data directory before --set and the shortcuts,
     * so those still apply on top (e.g. --set ingest.listen=10.0.0.1:7443) */
    dev_setup dev = {0};
    if (dev_dir) {
        snprintf(dev.dir, sizeof dev.dir, "%s", dev_dir);
        dev.ingest_port = (uint16_t)ingest_port_arg;
        dev.api_port = (uint16_t)api_port;
        if (dev_prepare(&dev, &cfg, err, sizeof err)) {
            fprintf(stderr, "mamorid: %s\n", err);
            return 1;
        }
        /* test hooks (core/failpoint.h): honoured by development nodes only */
        const char *fp = getenv("MAMORI_FAILPOINTS");
        if (fp && *fp) LOG_WARN(MOD, "failpoints armed (%d): %s", failpoints_arm(fp), fp);
    }
    for (int i = 0; i < set_count; i++) {
        char key[128];
        const char *eq = strchr(sets[i], '=');
        if (!eq || (size_t)(eq - sets[i]) >= sizeof key) {
            fprintf(stderr, "mamorid: --set expects KEY=VALUE, not '%s'\n", sets[i]);
            return 2;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
        if (config_set(&cfg, key, eq + 1, err, sizeof err)) {
            fprintf(stderr, "mamorid: --set %s\n", err);
            return 2;
        }
    }
    if ((bus_arg && config_set(&cfg, "bus.type", bus_arg, err, sizeof err)) ||
        (kafka_arg && config_set(&cfg, "bus.kafka.bootstrap", kafka_arg, err, sizeof err)) ||
        (roles_arg && config_set(&cfg, "node.roles", roles_arg, err, sizeof err))) {
        fprintf(stderr, "mamorid: %s\n", err);
        return 2;
    }
    for (int i = 0; i < rule_count; i++) {
        if (cfg.detect.rules.count >= 256) {
            fprintf(stderr, "mamorid: detect.rules: more than 256 paths\n");
            return 2;
        }
        config_list_append(&cfg.detect.rules, rules[i], strlen(rules[i]));
    }
    if (config_validate(&cfg, err, sizeof err)) {
        fprintf(stderr, "mamorid: %s\n", err);
        return 2;
    }
    if (print_config) {
        config_dump(&cfg, stdout);
        config_free(&cfg);
        return 0;
    }
    uint32_t roles = 0;
    if (config_roles(&cfg, &roles, err, sizeof err)) { /* validated above: cannot fail */
        fprintf(stderr, "mamorid: %s\n", err);
        return 2;
    }
    const bool has_ingest = roles & CONFIG_ROLE_INGEST, has_store = roles & CONFIG_ROLE_STORE,
               has_detect = roles & CONFIG_ROLE_DETECT;
    const bool all_roles = roles == (1u << CONFIG_ROLE_COUNT) - 1;
    enum log_level level;
    if (log_level_parse(cfg.log.level, &level) == 0) log_set_level(level);

    raise_fd_limit();
    (void)crash_report_install("mamorid"); /* a crash logs its stack (core/crash.h) */
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread inherits this; main waits for them */

    int exit_code = 1;
    store *db = NULL;
    bus *b = NULL;
    ingest *in = NULL;
    api *api_srv = NULL;
    store_worker worker;
    bool worker_started = false;
    alert_intake *intake = NULL;
    detect_rt *drt = NULL;
    response_svc *resp = NULL;
    store_tenant_retention retention[CONFIG_MAX_TENANT_OVERRIDES];
    store_options so;
    fill_store_options(&cfg, &so, retention);
    if (store_open(&so, &db, err, sizeof err)) {
        LOG_ERROR(MOD, "cannot open store path=%s: %s", cfg.store.path, err);
        goto out;
    }
    if (dev_dir && dev_ensure_admin_key(&dev, db, err, sizeof err)) {
        LOG_ERROR(MOD, "%s", err);
        goto out;
    }
    if (server_bus_create(&cfg, &b)) {
        LOG_ERROR(MOD, "cannot create the %s bus", cfg.bus.type);
        goto out;
    }
    /* Every role keeps something in this process's store (store.path): the events (store),
     * alerts and detection state (detect), the agents' resume points (ingest without the
     * store role: the ledger), what the API answers from. Split roles: docs/scaling.md. */
    if (has_ingest && !has_store) {
        bus *wrapped;
        if (server_ingest_ledger_wrap(b, db, &wrapped)) {
            LOG_ERROR(MOD, "cannot start the ingest ledger");
            goto out;
        }
        b = wrapped;
    }
    if (has_store) {
        if (store_worker_start(&worker, db, b, &cfg)) {
            LOG_ERROR(MOD, "cannot start the store writer");
            goto out;
        }
        worker_started = true;
        /* alerts of detect workers running without the store role (split roles) */
        if (server_bus_is_kafka(&cfg) && cfg.bus.kafka.alerts_topic[0] && alert_intake_start(b, db, &cfg, &intake)) {
            LOG_ERROR(MOD, "cannot start the alert intake");
            goto out;
        }
    }
    /* rules compile on the detect loader thread while ingest already runs: batches wait in
     * the detect queues (acks do not), and are evaluated as soon as the rule set is in */
    if (has_detect && (detect_rt_create(&cfg, db, b, &drt, err, sizeof err) || detect_rt_start(drt))) {
        LOG_ERROR(MOD, "cannot start detection: %s", err);
        goto out;
    }
    if (has_ingest && has_store) {
        int caught_up = server_bus_catch_up(b, &cfg, &sigs); /* Kafka: resume points must cover the topic */
        if (caught_up) {
            if (caught_up == -EINTR) exit_code = 0; /* stopped while waiting for the broker */
            else LOG_ERROR(MOD, "cannot catch up with the bus: %s", strerror(-caught_up));
            goto out;
        }
    }
    if (has_ingest) {
        /* remote response lives beside ingest (its connections) and this process's store */
        if (response_create(&cfg, db, &resp, err, sizeof err)) {
            LOG_ERROR(MOD, "cannot start the response service: %s", err);
            goto out;
        }
        ingest_options io = {.cfg = &cfg, .bus = b, .durable_seq = durable_seq, .durable_seq_ctx = db,
                             .on_agent_event = response_on_agent_event,
                             .desired_isolation = response_desired_isolation, .response_ctx = resp};
        if (ingest_create(&io, &in, err, sizeof err)) {
            LOG_ERROR(MOD, "cannot start ingest: %s", err);
            goto out;
        }
        response_set_ingest(resp, in);
        detect_rt_set_response(drt, resp);
        if (response_start(resp)) {
            LOG_ERROR(MOD, "cannot start the response thread");
            goto out;
        }
        if (ingest_start(in)) {
            LOG_ERROR(MOD, "cannot start ingest threads");
            goto out;
        }
    }
    if (cfg.api.enabled) {
        /* every process serves the API on its own store: the api role's process is where
         * clients go; a worker's port serves /metrics (every worker is scraped) and its
         * shard's data (docs/scaling.md); api.enabled: false closes it */
        api_options ao = {.cfg = &cfg, .db = db, .ingest = in, .bus = b,
                          .action_created = resp ? response_action_created : NULL, .action_ctx = resp,
                          .response_metrics = resp ? response_write_metrics : NULL};
        server_metrics_extra(b, drt ? detect_rt_write_metrics : NULL, drt, &ao.metrics_extra, &ao.metrics_extra_ctx);
        if (api_create(&ao, &api_srv, err, sizeof err) || api_start(api_srv)) {
            LOG_ERROR(MOD, "cannot start the API: %s", err);
            goto out;
        }
        if (dev_dir) dev.api_port = api_bound_port(api_srv);
    }
    if (dev_dir) {
        if (dev_write_json(&dev, in ? ingest_port(in) : 0, err, sizeof err)) {
            LOG_ERROR(MOD, "%s", err);
            goto out;
        }
        fprintf(stderr,
                "\nmamorid development node (%s bus, %s)\n"
                "  directory   %s\n"
                "  data        %s\n"
                "  ingest      127.0.0.1:%u  (TLS 1.3, agents need a certificate from %s/ca.pem)\n"
                "  api         https://127.0.0.1:%u  (admin key in %s; mamorictl --dev %s search '...')\n"
                "  dev.json    %s\n"
                "  next        mamori-agent-sim --dev %s --agents 50 --duration 60\n"
                "              then watch the 'stats' lines below; stop with Ctrl-C\n\n",
                server_bus_is_kafka(&cfg) ? "kafka" : "embedded", all_roles ? "single process" : cfg.node.roles, dev.dir,
                cfg.store.path, in ? ingest_port(in) : 0, dev.dir, dev.api_port, dev.admin_key_path, dev.dir,
                dev.dev_json_path, dev.dir);
    }
    LOG_INFO(MOD, "ready ingest_port=%u api_port=%u store=%s sync=%s roles=%s", in ? ingest_port(in) : 0,
             api_srv ? api_bound_port(api_srv) : 0, cfg.store.path, cfg.store.sync ? "true" : "false", cfg.node.roles);

    ingest_stats prev = {0};
    int64_t last_us = clock_mono_us();
    for (;;) {
        struct timespec timeout = {10, 0};
        int sig = sigtimedwait(&sigs, NULL, &timeout);
        int64_t now_us = clock_mono_us();
        if (sig == SIGINT || sig == SIGTERM) {
            LOG_INFO(MOD, "signal %d: shutting down", sig);
            break;
        }
        if (sig == SIGHUP) {
            LOG_INFO(MOD, "SIGHUP: reloading detection rules");
            if (drt) detect_rt_request_reload(drt);
            continue;
        }
        log_stats(in, b, worker_started ? &worker : NULL, db, drt, &prev, (double)(now_us - last_us) / 1e6);
        last_us = now_us;
    }
    exit_code = 0;
out:
    api_stop(api_srv);
    if (in) ingest_stop(in);
    response_stop(resp); /* before ingest_destroy: it sends through ingest */
    if (b) bus_shutdown(b);
    if (worker_started) store_worker_join(&worker);
    alert_intake_stop(intake);
    detect_rt_destroy(drt); /* drains the detect queues: every batch is durable by now */
    bus_destroy(b);         /* all consumers are closed; the ingest ledger records its last acks */
    if (db) store_close(db);
    api_destroy(api_srv);
    ingest_destroy(in);
    response_destroy(resp);
    config_free(&cfg);
    if (exit_code == 0) LOG_INFO(MOD, "stopped");
    return exit_code;
}
