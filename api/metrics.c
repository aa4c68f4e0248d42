/* api/metrics.c — GET /metrics in the Prometheus text format: every stage of the node
 * (ingest, bus, store) from their stats functions, and the API's own counters and latency
 * histograms, summed over the API threads at scrape time. Names follow
 * mamori_<module>_<thing>_<unit>. */
#include "internal.h"

#include "bus/bus.h"
#include "core/clock.h"
#include "ingest/ingest.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>

static const char *const ep_names[EP_COUNT] = {"other", "healthz", "readyz", "metrics", "openapi", "search",
                                               "event", "process_tree", "agents", "agent", "keys", "key",
                                               "alerts", "alert", "rules_test", "agent_actions", "action", "file",
                                               "audit"};
static const int status_codes[API_STATUS_SLOTS] = {200, 201, 204, 400, 401, 403, 404, 405,
                                                   408, 413, 429, 500, 503, 504, 409, 0};
static const char *const bounds[API_LATENCY_BUCKETS] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                                        "0.25",  "0.5",    "1",     "2.5",  "5",     "10",  "30"};

static void metric(buf *o, const char *name, const char *type, const char *help, uint64_t v)
{
    buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, (unsigned long long)v);
}

static uint64_t sum_at(const api *a, size_t offset)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < a->thread_count; i++) {
        const _Atomic uint64_t *p = (const _Atomic uint64_t *)((const char *)&a->threads[i].counters + offset);
        s += atomic_load_explicit(p, memory_order_relaxed);
    }
    return s;
}

/* The counter of every thread, summed. */
#define SUM(field) sum_at(a, (size_t)((const char *)&a->threads[0].counters.field - (const char *)&a->threads[0].counters))

void handle_metrics(api_req *r)
{
    api *a = r->a;
    buf *o = &r->body;
    if (a->ingest) {
        ingest_stats s;
        ingest_get_stats(a->ingest, &s);
        metric(o, "mamori_ingest_connections_accepted_total", "counter", "TLS connections accepted", s.connections_accepted);
        metric(o, "mamori_ingest_connections_active", "gauge", "open agent connections", s.connections_active);
        metric(o, "mamori_ingest_connections_refused_total", "counter", "connections refused at max_connections",
               s.connections_refused_full);
        metric(o, "mamori_ingest_handshakes_failed_total", "counter", "TLS handshakes that failed", s.handshakes_failed);
        metric(o, "mamori_ingest_agents_connected", "gauge", "connections past HELLO", s.agents_connected);
        metric(o, "mamori_ingest_protocol_violations_total", "counter", "connections closed for a protocol violation",
               s.protocol_violations);
        metric(o, "mamori_ingest_superseded_total", "counter", "connections replaced by a newer one of the same agent",
               s.superseded);
        metric(o, "mamori_ingest_batches_received_total", "counter", "EVENTS batches received", s.batches_received);
        metric(o, "mamori_ingest_batches_acked_total", "counter", "batches acknowledged (durable)", s.batches_acked);
        metric(o, "mamori_ingest_events_accepted_total", "counter", "events normalized and published", s.events_accepted);
        buf_printf(o, "# HELP mamori_ingest_events_rejected_total events refused, by reason\n"
                      "# TYPE mamori_ingest_events_rejected_total counter\n"
                      "mamori_ingest_events_rejected_total{reason=\"malformed\"} %llu\n",
                   (unsigned long long)s.events_rejected);
        metric(o, "mamori_ingest_received_bytes_total", "counter", "TLS bytes read from agents", s.bytes_received);
        metric(o, "mamori_ingest_backpressure_pauses_total", "counter", "times a connection stopped being read",
               s.backpressure_pauses);
        metric(o, "mamori_ingest_seq_gaps_total", "counter", "first batches after WELCOME that skipped numbers",
               s.seq_gaps);
        metric(o, "mamori_response_commands_sent_total", "counter", "COMMAND frames written to agents",
               s.commands_sent);
        metric(o, "mamori_response_results_received_total", "counter", "RESULT frames (JSON) received",
               s.results_received);
        metric(o, "mamori_response_unexpected_results_total", "counter",
               "RESULTs for a command not sent on that connection, another action id, or an action already final",
               s.results_unexpected);
        metric(o, "mamori_response_file_chunks_total", "counter", "fetch_file chunks received", s.file_chunks);
        metric(o, "mamori_response_files_rejected_total", "counter",
               "fetched files whose size or sha256 differed from what the agent announced", s.files_rejected);
        buf_printf(o, "# HELP mamori_ingest_ack_latency_seconds publish to durable, per batch\n"
                      "# TYPE mamori_ingest_ack_latency_seconds summary\n"
                      "mamori_ingest_ack_latency_seconds_sum %.6f\nmamori_ingest_ack_latency_seconds_count %llu\n",
                   (double)s.ack_latency_us_sum / 1e6, (unsigned long long)s.ack_latency_count);
    }
    if (a->bus) {
        bus_stats b;
        bus_get_stats(a->bus, &b);
        metric(o, "mamori_bus_published_batches_total", "counter", "batches published", b.published);
        metric(o, "mamori_bus_refused_total", "counter", "publishes refused for backpressure", b.refused);
        metric(o, "mamori_bus_inflight_bytes", "gauge", "memory of batches in flight", b.inflight_bytes);
        metric(o, "mamori_bus_inflight_batches", "gauge", "batches in flight", b.inflight_batches);
        metric(o, "mamori_bus_queued_batches", "gauge", "batches queued for consumers", b.queued_batches);
    }
    store_stats ss;
    store_get_stats(a->db, &ss);
    metric(o, "mamori_store_events_written_total", "counter", "events written (rate = store write rate)",
           ss.events_written);
    metric(o, "mamori_store_batches_written_total", "counter", "batches written", ss.batches_written);
    metric(o, "mamori_store_batches_duplicate_total", "counter", "re-delivered batches skipped", ss.batches_duplicate);
    metric(o, "mamori_store_group_commits_total", "counter", "group commits (WAL writes)", ss.group_commits);
    metric(o, "mamori_store_group_commit_errors_total", "counter", "group commits that failed (retried; acks wait)",
           ss.group_commit_errors);
    metric(o, "mamori_store_index_slices_flushed_total", "counter", "index slices written", ss.index_slices_flushed);
    metric(o, "mamori_store_index_entries_pending", "gauge", "postings entries in memory", ss.index_entries_pending);
    metric(o, "mamori_store_index_writer_waits_total", "counter", "group commits that waited for the slice writer",
           ss.index_writer_waits);
    buf_printf(o, "# HELP mamori_store_disk_bytes live SST bytes by column family\n# TYPE mamori_store_disk_bytes gauge\n"
                  "mamori_store_disk_bytes{cf=\"events\"} %llu\nmamori_store_disk_bytes{cf=\"index\"} %llu\n"
                  "mamori_store_disk_bytes{cf=\"all\"} %llu\n",
               (unsigned long long)ss.events_sst_bytes, (unsigned long long)ss.index_sst_bytes,
               (unsigned long long)ss.total_sst_bytes);
    metric(o, "mamori_store_events_estimated", "gauge", "RocksDB's estimate of stored events", ss.estimated_events);
    metric(o, "mamori_store_retention_ranges_deleted_total", "counter", "day ranges removed by retention",
           ss.retention_ranges_deleted);

    /* API */
    buf_puts(o, "# HELP mamori_api_requests_total requests by endpoint and status\n"
                "# TYPE mamori_api_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (int s = 0; s < API_STATUS_SLOTS; s++) {
            uint64_t n = SUM(requests[e][s]);
            if (!n) continue;
            if (status_codes[s]) buf_printf(o, "mamori_api_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                                            ep_names[e], status_codes[s], (unsigned long long)n);
            else buf_printf(o, "mamori_api_requests_total{endpoint=\"%s\",status=\"other\"} %llu\n", ep_names[e],
                            (unsigned long long)n);
        }
    buf_puts(o, "# HELP mamori_api_request_duration_seconds time to answer, by endpoint\n"
                "# TYPE mamori_api_request_duration_seconds histogram\n");
    for (int e = 0; e < EP_COUNT; e++) {
        uint64_t cum = 0, total = 0;
        for (int b = 0; b <= API_LATENCY_BUCKETS; b++) total += SUM(latency_bucket[e][b]);
        if (!total) continue;
        for (int b = 0; b < API_LATENCY_BUCKETS; b++) {
            cum += SUM(latency_bucket[e][b]);
            buf_printf(o, "mamori_api_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%s\"} %llu\n", ep_names[e],
                       bounds[b], (unsigned long long)cum);
        }
        buf_printf(o, "mamori_api_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n", ep_names[e],
                   (unsigned long long)total);
        buf_printf(o, "mamori_api_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n", ep_names[e],
                   (double)SUM(latency_us_sum[e]) / 1e6);
        buf_printf(o, "mamori_api_request_duration_seconds_count{endpoint=\"%s\"} %llu\n", ep_names[e],
                   (unsigned long long)total);
    }
    metric(o, "mamori_api_rate_limited_total", "counter", "requests refused by the per-key rate limit", SUM(rate_limited));
    metric(o, "mamori_api_overloaded_total", "counter", "requests refused at max_concurrent_requests", SUM(overloaded));
    metric(o, "mamori_api_auth_failures_total", "counter", "requests without a valid key", SUM(auth_failed));
    metric(o, "mamori_api_forbidden_total", "counter", "requests refused for role or tenant", SUM(forbidden));
    metric(o, "mamori_api_inflight_requests", "gauge", "heavy requests running", atomic_load(&a->inflight));
    metric(o, "mamori_search_index_refs_total", "counter", "index references read by searches", SUM(search_refs));
    metric(o, "mamori_search_events_fetched_total", "counter", "events read by address", SUM(search_fetched));
    metric(o, "mamori_search_events_scanned_total", "counter", "events read by range scans", SUM(search_scanned));
    metric(o, "mamori_search_events_evaluated_total", "counter", "events parsed and evaluated", SUM(search_parsed));
    metric(o, "mamori_search_rows_total", "counter", "rows returned", SUM(search_rows));
    metric(o, "mamori_search_deadline_exceeded_total", "counter", "searches stopped by the deadline",
           SUM(search_deadline));
    if (a->metrics_extra) a->metrics_extra(a->metrics_extra_ctx, o);
    if (a->response_metrics) a->response_metrics(a->action_ctx, o);
    metric(o, "mamori_process_start_time_seconds", "gauge", "start time of mamorid",
           (uint64_t)(a->started_us / 1000000));
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4");
    struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
    evbuffer_add(out, o->data, o->len);
    evhttp_send_reply(r->req, 200, "OK", NULL);
    r->status = 200;
}
