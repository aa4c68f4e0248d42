/* bench/sim/agent.c — the protocol side of one simulated agent (docs/protocol.md):
 * HELLO, WELCOME with its resume rules (§4.2), batches numbered consecutively and kept in
 * the spool until acknowledged (§4.3-4.4, §5), heartbeats (§4.5), CLOSE (§4.7), and a
 * "not supported" RESULT for any COMMAND. Batches are rendered into one per-thread buffer
 * and compressed straight into their spool slot: nothing is allocated per event. */
#include "sim.h"

#include "core/clock.h"
#include "core/frame.h"
#include "core/log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MOD "sim"
/* An event the server must reject alone (--inject-malformed): the closing brace is missing. */
static const char MALFORMED_EVENT[] = "{\"event\":{\"kind\":\"event\"},\"message\":\"injected by mamori-agent-sim "
                                      "--inject-malformed\"";
/* Room kept below the frame limit for the event that crosses the soft batch size, and
 * for zstd's worst case on incompressible input. */
#define BATCH_BYTES_SLACK (SIM_EVENT_BYTES_MAX + 64u * 1024)

static void set_batch_limits(sim_agent *a, uint64_t max_batch_bytes)
{
    uint64_t by_frame = a->max_frame_bytes > BATCH_BYTES_SLACK * 2 ? a->max_frame_bytes - BATCH_BYTES_SLACK
                                                                     : a->max_frame_bytes / 2;
    by_frame -= by_frame / 128; /* ZSTD_compressBound: input + input/256 + small */
    uint64_t by_batch = max_batch_bytes > SIM_EVENT_BYTES_MAX * 2 ? max_batch_bytes - SIM_EVENT_BYTES_MAX
                                                                  : max_batch_bytes / 2;
    a->batch_bytes_soft = (size_t)MAMORI_MIN(by_frame, by_batch);
}

void agent_init(sim_worker *w, sim_agent *a, uint32_t index, uint32_t local)
{
    const sim_run *run = w->run;
    const sim_options *opt = &run->opt;
    memset(a, 0, sizeof *a);
    a->index = index;
    a->local = local;
    a->fd = -1;
    a->state = AGENT_WAITING;
    a->identity = &run->target.identities[index % run->target.identity_count];
    sim_host_init(&a->host, a->identity->agent_id, opt->first_agent + index,
                  sim_host_windows(run->format, run->corpus != NULL, opt->first_agent + index));
    buf_init(&a->rx);
    buf_init(&a->control);
    spool_init(&a->spool);
    a->next_seq = 1;
    a->tx_seq = 1;
    a->window = opt->max_inflight ? MAMORI_MIN(opt->max_inflight, (uint32_t)SIM_DEFAULT_WINDOW) : SIM_DEFAULT_WINDOW;
    a->batch_events = opt->batch_events;
    a->heartbeat_ms = SIM_DEFAULT_HEARTBEAT_MS;
    a->max_frame_bytes = FRAME_DEFAULT_MAX_PAYLOAD;
    set_batch_limits(a, 16u * 1024 * 1024);
    if (opt->idle) a->quota = 0;
    else if (opt->events_per_agent) a->quota = opt->events_per_agent;
    else a->quota = UINT64_MAX;
    a->isolated = run->isolated_at_start;
    if (a->isolated) STAT_ADD(&w->counters, isolated, 1);
    if (run->corpus) {
        /* Agents spread over the corpus so they do not all send the same stream. */
        uint64_t lines = replay_line_count(run->corpus);
        uint64_t start = (uint64_t)((double)index / opt->agents * (double)lines);
        replay_cursor_init(&a->replay, run->corpus, start);
    }
}

void agent_fini(sim_agent *a)
{
    if (a->ssl) SSL_free(a->ssl);
    if (a->fd >= 0) close(a->fd);
    buf_fini(&a->rx);
    buf_fini(&a->control);
    spool_fini(&a->spool);
    model_destroy(a->model);
    response_free(a);
}

void agent_queue_hello(sim_worker *w, sim_agent *a)
{
    const sim_options *opt = &w->run->opt;
    buf *b = &w->render; /* free between batches */
    buf_clear(b);
    buf_puts(b, "{\"protocol\":1,\"agent_version\":\"mamori-agent-sim/" SIM_VERSION "\",\"last_acked_seq\":");
    buf_put_u64(b, a->acked_seq);
    buf_puts(b, ",\"host\":{\"name\":");
    json_write_string(b, a->host.name, strlen(a->host.name));
    buf_printf(b, ",\"id\":\"%s\",\"os\":{\"type\":\"%s\",\"version\":\"%s\"},\"ip\":[\"%s\"],\"mac\":[\"%s\"],"
                  "\"architecture\":\"x86_64\"},\"capabilities\":[%s\"ecs\",\"winlog\",\"response\","
                  "\"isolation\"],\"isolation\":\"%s\"}",
               a->host.id, a->host.windows ? "windows" : "linux", a->host.windows ? "10.0.19045" : "6.1.0",
               a->host.ip, a->host.mac, opt->no_compress ? "" : "\"zstd\",", agent_isolation_name(a));
    conn_queue_frame(a, FRAME_HELLO, 0, b->data, b->len);
    buf_clear(b);
}

/* ---- production ---- */

/* Renders up to `want` events into one batch, compresses it into a new spool slot and
 * returns how many events it holds (fewer when the batch reached its byte limit). */
static uint32_t build_batch(sim_worker *w, sim_agent *a, uint32_t want)
{
    const sim_run *run = w->run;
    const sim_options *opt = &run->opt;
    int64_t now_us = clock_wall_us();
    buf *r = &w->render;
    buf_clear(r);
    uint32_t count = 0, malformed = 0;
    while (count < want && (count == 0 || r->len < a->batch_bytes_soft)) {
        uint64_t event_index = a->produced + count;
        if (opt->inject_malformed && (event_index + 1) % opt->inject_malformed == 0) {
            buf_append(r, MALFORMED_EVENT, sizeof MALFORMED_EVENT - 1);
            malformed++;
        } else if (run->corpus) {
            replay_render(run->corpus, &a->replay, !opt->no_rebase, now_us, r);
        } else {
            if (!a->model) a->model = model_create(&a->host, sim_model_seed(opt->seed, &a->host));
            model_render(a->model, run->format, now_us + count, r);
        }
        buf_putc(r, '\n');
        count++;
    }

    sim_batch *b = spool_push(&a->spool, a->next_seq++);
    b->events = count;
    b->malformed = malformed;
    uint8_t flags = (uint8_t)(run->format << FRAME_FLAG_FORMAT_SHIFT);
    size_t payload_len;
    if (opt->no_compress) {
        buf_reserve(&b->frame, FRAME_HEADER_BYTES + r->len);
        memcpy(b->frame.data + FRAME_HEADER_BYTES, r->data, r->len);
        payload_len = r->len;
    } else {
        size_t bound = ZSTD_compressBound(r->len);
        buf_reserve(&b->frame, FRAME_HEADER_BYTES + bound);
        payload_len = ZSTD_compress2(w->cctx, b->frame.data + FRAME_HEADER_BYTES, bound, r->data, r->len);
        MAMORI_ASSERT(!ZSTD_isError(payload_len));
        flags |= FRAME_FLAG_ZSTD;
    }
    MAMORI_ASSERT(payload_len <= a->max_frame_bytes);
    frame_header h = {.length = (uint32_t)payload_len, .type = FRAME_EVENTS, .flags = flags, .seq = b->seq};
    frame_header_encode(&h, (uint8_t *)b->frame.data);
    b->frame.len = FRAME_HEADER_BYTES + payload_len;

    a->produced += count;
    STAT_ADD(&w->counters, sent, count);
    STAT_ADD(&w->counters, batches, 1);
    STAT_ADD(&w->counters, bytes_raw, r->len);
    if (malformed) STAT_ADD(&w->counters, malformed, malformed);
    buf_clear(r);
    return count;
}

void agent_produce(sim_worker *w, sim_agent *a, int64_t now_ms)
{
    const sim_run *run = w->run;
    if (a->state != AGENT_READY || run->opt.idle) return;
    bool rate_mode = w->rate_per_agent > 0;
    bool production_over = now_ms >= run->production_end_ms;
    while (a->spool.count < a->window) {
        uint64_t n;
        if (rate_mode) {
            if (!a->pending) break;
            bool due = a->pending >= a->batch_events || production_over ||
                       now_ms - a->pending_since_ms >= (int64_t)run->opt.flush_ms ||
                       a->produced + a->pending >= a->quota;
            if (!due) break;
            n = MAMORI_MIN(a->pending, (uint64_t)a->batch_events);
        } else {
            if (production_over || a->produced >= a->quota) break;
            n = MAMORI_MIN(a->quota - a->produced, (uint64_t)a->batch_events);
        }
        uint32_t made = build_batch(w, a, (uint32_t)n);
        if (rate_mode) {
            a->pending -= made;
            if (a->pending) a->pending_since_ms = now_ms;
        }
    }
}

void agent_check_finished(sim_worker *w, sim_agent *a, int64_t now_ms)
{
    if (a->finished || a->state == AGENT_STOPPED) return;
    const sim_run *run = w->run;
    bool done;
    if (run->opt.idle)
        done = now_ms >= run->production_end_ms;
    else if (a->quota != UINT64_MAX)
        done = a->produced >= a->quota && a->spool.count == 0;
    else
        done = now_ms >= run->production_end_ms && a->pending == 0 && a->spool.count == 0;
    if (!done) return;
    a->finished = true;
    STAT_ADD(&w->counters, finished, 1);
    spool_trim(&a->spool);
}

void agent_tick(sim_worker *w, sim_agent *a, int64_t now_ms, double dt_s)
{
    const sim_run *run = w->run;
    if (a->state == AGENT_STOPPED) return;
    /* Rate mode: events keep happening while the agent is disconnected, like on a real
     * host; they wait (as a count) for the connection to come back. */
    if (w->rate_per_agent > 0 && now_ms < run->production_end_ms && a->produced + a->pending < a->quota) {
        a->credit += w->rate_per_agent * dt_s;
        if (a->credit >= 1.0) {
            double whole = floor(a->credit);
            a->credit -= whole;
            uint64_t add = (uint64_t)whole;
            add = MAMORI_MIN(add, a->quota - a->produced - a->pending);
            if (!a->pending) a->pending_since_ms = now_ms;
            a->pending = MAMORI_MIN(a->pending + add, (uint64_t)SIM_PENDING_MAX);
        }
    }
    if (a->state == AGENT_READY) {
        agent_produce(w, a, now_ms);
        response_pump(w, a);
        /* Heartbeat while there is nothing else to send (§4.5), and at once when the
         * isolation enforced changed other than by a command's result. */
        if (a->report_isolation ||
            (a->unit == WRITE_NONE && !a->control.len && a->tx_seq == a->next_seq &&
             now_ms - a->last_tx_ms >= (int64_t)a->heartbeat_ms)) {
            char payload[96];
            int n = snprintf(payload, sizeof payload, "{\"isolation\":\"%s\",\"spool_batches\":%u}",
                             agent_isolation_name(a), a->spool.count);
            conn_queue_frame(a, FRAME_PING, ++a->ping_nonce, payload, (size_t)n);
            a->last_tx_ms = now_ms;
            a->report_isolation = false;
        }
        (void)conn_flush(w, a);
    }
    agent_check_finished(w, a, now_ms);
}

/* ---- frames from the server ---- */

static bool get_u64(const json_value *obj, const char *key, uint64_t *out)
{
    const json_value *v = json_object_get(obj, key, strlen(key));
    if (!v || v->type != JSON_NUMBER || !(v->flags & JSON_FLAG_INT) || v->num.i < 0) return false;
    *out = (uint64_t)v->num.i;
    return true;
}

static int violation(sim_worker *w, sim_agent *a, const char *fmt, ...) MAMORI_PRINTF(3, 4);
static int violation(sim_worker *w, sim_agent *a, const char *fmt, ...)
{
    char reason[512];
    int n = snprintf(reason, sizeof reason, "frame %llu: ", (unsigned long long)a->frames_in);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason + n, sizeof reason - (size_t)n, fmt, ap);
    va_end(ap);
    LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: server broke the protocol: %s", a->identity->agent_id, reason);
    STAT_ADD(&w->counters, protocol_errors, 1);
    conn_close_with(w, a, reason, true);
    return -1;
}

static int parse_object(sim_worker *w, const uint8_t *payload, uint32_t len, json_value *out)
{
    arena_reset(&w->json_arena);
    json_error err;
    if (json_parse(w->json, &w->json_arena, (const char *)payload, len, out, &err) != 0) return -EINVAL;
    return out->type == JSON_OBJECT ? 0 : -EINVAL;
}

/* Acknowledges spooled batches up to `seq`. `report` is the ACK payload of batch `seq`
 * (NULL for batches acknowledged by WELCOME.acked_seq or by a later ACK). */
static void ack_through(sim_worker *w, sim_agent *a, uint64_t seq, const json_value *report)
{
    int64_t now_us = clock_mono_us();
    sim_batch *b;
    while ((b = spool_front(&a->spool)) && b->seq <= seq) {
        uint64_t rejected = b->malformed;
        bool reported = report && b->seq == seq;
        if (reported) {
            uint64_t accepted = 0, rejected_reported = 0;
            bool ok = get_u64(report, "accepted", &accepted) && get_u64(report, "rejected", &rejected_reported);
            if (ok) rejected = rejected_reported;
            if (!ok || accepted + rejected_reported != b->events) {
                STAT_ADD(&w->counters, ack_mismatches, 1);
                LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5,
                                "agent %s: ACK %llu reports accepted %llu + rejected %llu for a batch of %u events",
                                a->identity->agent_id, (unsigned long long)seq, (unsigned long long)accepted,
                                (unsigned long long)rejected_reported, b->events);
            }
            const json_value *dup = json_object_get(report, "duplicate", 9);
            if (dup && dup->type == JSON_BOOL && dup->num.b) STAT_ADD(&w->counters, duplicates, 1);
            if (b->sent_us) histogram_record(&w->ack_latency_us, (uint64_t)(now_us - b->sent_us));
        } else {
            STAT_ADD(&w->counters, acked_without_report, 1);
        }
        STAT_ADD(&w->counters, acked, b->events);
        STAT_ADD(&w->counters, rejected, rejected);
        STAT_ADD(&w->counters, batches_acked, 1);
        spool_pop_front(&a->spool);
    }
    if (seq > a->acked_seq) a->acked_seq = seq;
}

static int on_welcome(sim_worker *w, sim_agent *a, const uint8_t *payload, uint32_t len)
{
    const sim_options *opt = &w->run->opt;
    json_value root;
    if (parse_object(w, payload, len, &root) != 0) return violation(w, a, "WELCOME is not a JSON object");
    uint64_t protocol = 0, acked = 0, resume = 0, v;
    if (!get_u64(&root, "protocol", &protocol) || protocol != FRAME_PROTOCOL_VERSION)
        return violation(w, a, "WELCOME protocol %llu, expected 1", (unsigned long long)protocol);
    if (!get_u64(&root, "acked_seq", &acked) || !get_u64(&root, "resume_seq", &resume))
        return violation(w, a, "WELCOME without acked_seq/resume_seq");
    if (resume < acked) return violation(w, a, "WELCOME resume_seq %llu below acked_seq %llu",
                                         (unsigned long long)resume, (unsigned long long)acked);
    if (get_u64(&root, "heartbeat_interval_ms", &v) && v >= 100) a->heartbeat_ms = (uint32_t)MAMORI_MIN(v, 3600000u);
    uint64_t max_batch_bytes = 16u * 1024 * 1024;
    const json_value *limits = json_object_get(&root, "limits", 6);
    uint32_t window = SIM_DEFAULT_WINDOW;
    if (limits && limits->type == JSON_OBJECT) {
        if (get_u64(limits, "max_frame_bytes", &v)) {
            if (v < SIM_FRAME_BYTES_MIN) {
                /* Legal, but too small for a replayed event of up to 64 KiB plus its batch. */
                LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 5, "agent %s: server max_frame_bytes %llu is below the %u the "
                                "simulator needs: agent stops", a->identity->agent_id, (unsigned long long)v,
                                SIM_FRAME_BYTES_MIN);
                conn_close_with(w, a, "max_frame_bytes too small for this agent", false);
                return -1;
            }
            a->max_frame_bytes = (uint32_t)MAMORI_MIN(v, UINT32_MAX);
        }
        if (get_u64(limits, "max_batch_bytes", &v) && v >= 1024) max_batch_bytes = v;
        if (get_u64(limits, "max_batch_events", &v) && v >= 1)
            a->batch_events = (uint32_t)MAMORI_MIN(v, (uint64_t)opt->batch_events);
        if (get_u64(limits, "max_unacked_batches", &v) && v >= 1) window = (uint32_t)MAMORI_MIN(v, 1u << 20);
    }
    if (opt->max_inflight) window = MAMORI_MIN(window, opt->max_inflight);
    a->window = window;
    set_batch_limits(a, max_batch_bytes);
    /* §4.2 / response.md §2.4: converge on the isolation the server wants. */
    const json_value *isolation = json_object_get(&root, "isolation", 9);
    bool want_isolated = a->isolated;
    if (isolation && isolation->type == JSON_STRING) {
        if (isolation->len == 8 && memcmp(isolation->str, "isolated", 8) == 0) want_isolated = true;
        else if (isolation->len == 4 && memcmp(isolation->str, "none", 4) == 0) want_isolated = false;
        else
            LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: WELCOME isolation '%.*s' unknown: ignored",
                            a->identity->agent_id, (int)MAMORI_MIN(isolation->len, 32u), isolation->str);
    }

    /* §4.2: batches <= acked_seq are durable: drop them. */
    if (acked < a->acked_seq) {
        STAT_ADD(&w->counters, seq_regressions, 1);
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5,
                        "agent %s: WELCOME acked_seq %llu is below %llu, already acknowledged: the server lost "
                        "history",
                        a->identity->agent_id, (unsigned long long)acked, (unsigned long long)a->acked_seq);
    }
    ack_through(w, a, acked, NULL);
    /* (acked_seq, resume_seq]: accepted, to be acknowledged on this connection; kept, not
     * resent. Above resume_seq: resent in order. A fresh agent continues at resume+1. */
    if (a->next_seq <= resume) a->next_seq = resume + 1;
    sim_batch *front = spool_front(&a->spool);
    if (front && spool_back(&a->spool)->seq > resume) {
        a->tx_seq = MAMORI_MAX(resume + 1, front->seq);
        STAT_ADD(&w->counters, resent_batches, a->next_seq - a->tx_seq);
    } else {
        a->tx_seq = a->next_seq;
    }

    MAMORI_ASSERT(w->handshakes > 0);
    w->handshakes--;
    a->state = AGENT_READY;
    a->backoff_attempt = 0;
    a->last_tx_ms = clock_mono_ms();
    STAT_ADD(&w->counters, connects, 1);
    if (a->ever_connected) STAT_ADD(&w->counters, reconnects, 1);
    a->ever_connected = true;
    STAT_ADD(&w->counters, connected, 1);
    a->counted_connected = true;
    response_apply_desired(w, a, want_isolated);
    LOG_DEBUG(MOD, "agent %s: WELCOME acked_seq=%llu resume_seq=%llu window=%u next_seq=%llu resend_from=%llu",
              a->identity->agent_id, (unsigned long long)acked, (unsigned long long)resume, a->window,
              (unsigned long long)a->next_seq, (unsigned long long)a->tx_seq);
    return 0;
}

static int on_ack(sim_worker *w, sim_agent *a, uint64_t seq, const uint8_t *payload, uint32_t len)
{
    /* Only batches fully written on this connection, or accepted before it (<= resume_seq,
     * all below tx_seq), can be acknowledged. */
    if (seq >= a->tx_seq)
        return violation(w, a, "ACK %llu for a batch not sent yet (next to send: %llu)", (unsigned long long)seq,
                         (unsigned long long)a->tx_seq);
    if (seq <= a->acked_seq) return 0; /* already known durable, e.g. via WELCOME */
    json_value report;
    bool have_report = parse_object(w, payload, len, &report) == 0;
    if (!have_report)
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: ACK %llu payload is not a JSON object",
                        a->identity->agent_id, (unsigned long long)seq);
    ack_through(w, a, seq, have_report ? &report : NULL);
    return 0;
}

static bool close_is_permanent(const char *reason, size_t len)
{
    /* Another connection holds our identity, or the server will never speak our
     * version: reconnecting would only repeat it. Everything else (idle timeout,
     * shutdown, a violation) is worth another try after a backoff. */
    return memmem(reason, len, "superseded", 10) != NULL || memmem(reason, len, "not supported", 13) != NULL;
}

static int on_close(sim_worker *w, sim_agent *a, const uint8_t *payload, uint32_t len)
{
    const char *reason = (const char *)payload;
    size_t n = MAMORI_MIN((size_t)len, (size_t)1024);
    bool permanent = close_is_permanent(reason, n);
    STAT_ADD(&w->counters, server_closes, 1);
    if (n >= 6 && memcmp(reason, "frame ", 6) == 0) STAT_ADD(&w->counters, protocol_errors, 1);
    LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: server closed the connection: \"%.*s\"%s", a->identity->agent_id,
                    (int)MAMORI_MIN(n, (size_t)300), reason, permanent ? " (permanent: agent stops)" : "");
    if (a->state == AGENT_HELLO) STAT_ADD(&w->counters, connect_failures, 1);
    /* §4.7: nothing is sent after a CLOSE is received. */
    conn_drop(w, a, permanent);
    return -1;
}

int agent_on_frame(sim_worker *w, sim_agent *a, uint8_t type, uint8_t flags, uint64_t seq, const uint8_t *payload,
                   uint32_t len)
{
    (void)flags; /* frame_peek rejected flags not allowed for the type */
    if (type == FRAME_CLOSE) return on_close(w, a, payload, len);
    if (a->state == AGENT_HELLO && type != FRAME_WELCOME)
        return violation(w, a, "expected WELCOME, got %s", frame_type_name(type));
    switch (type) {
    case FRAME_WELCOME:
        if (a->state != AGENT_HELLO) return violation(w, a, "unexpected WELCOME");
        return on_welcome(w, a, payload, len);
    case FRAME_ACK: return on_ack(w, a, seq, payload, len);
    case FRAME_PING:
        conn_queue_frame(a, FRAME_PONG, seq, NULL, 0);
        return 0;
    case FRAME_PONG: return 0;
    case FRAME_COMMAND:
        response_on_command(w, a, seq, payload, len);
        return 0;
    default: return violation(w, a, "unexpected %s from the server", frame_type_name(type));
    }
}
