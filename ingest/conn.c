/* ingest/conn.c — one agent connection: TLS through memory BIOs, frame reassembly, the
 * protocol v1 state machine (HELLO → WELCOME → EVENTS/ACK, PING/PONG, CLOSE), and the
 * per-connection limits that stop reading (backpressure) instead of dropping. */
#include "internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "ingest"

static uint32_t slot_of(ingest_thread *t, conn *c) { return (uint32_t)(c - t->conns); }

void conn_send_frame(ingest_thread *t, conn *c, uint8_t type, uint8_t flags, uint64_t seq, const void *payload,
                     size_t len)
{
    if (c->state < CONN_WAIT_HELLO || c->state > CONN_CLOSING) return;
    uint8_t header[FRAME_HEADER_BYTES];
    frame_header h = {(uint32_t)len, type, flags, 0, seq};
    frame_header_encode(&h, header);
    /* Memory BIOs never refuse a write; each SSL_write is one or more TLS records. */
    if (SSL_write(c->ssl, header, sizeof header) <= 0 || (len && SSL_write(c->ssl, payload, (int)len) <= 0)) {
        ERR_clear_error();
        return;
    }
    (void)t;
}

static void log_close(ingest_thread *t, conn *c, const char *reason)
{
    (void)t;
    if (c->agent_id[0])
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 20, "closing connection agent=%s tenant=%s peer=%s reason=\"%s\"",
                        c->agent_id, c->tenant, c->peer, reason);
    else
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 20, "closing connection peer=%s reason=\"%s\"", c->peer, reason);
}

void conn_close(ingest_thread *t, conn *c, const char *reason)
{
    if (c->state >= CONN_CLOSING || c->state == CONN_FREE) return;
    bool tls_up = c->state == CONN_WAIT_HELLO || c->state == CONN_READY;
    if (reason) {
        log_close(t, c, reason);
        if (tls_up) {
            size_t n = strlen(reason);
            conn_send_frame(t, c, FRAME_CLOSE, 0, 0, reason, n > 1024 ? 1024 : n);
        }
    }
    if (tls_up) {
        SSL_shutdown(c->ssl); /* queues close_notify */
        ERR_clear_error();
    }
    if (c->state == CONN_READY) {
        atomic_fetch_sub(&t->counters.agents_connected, 1);
        conn_resp_close(t, c);
    }
    registry_release(t->owner, c, t->index, slot_of(t, c));
    if (c->pending) {
        bus_batch_destroy(c->pending); /* never published: the agent resends it */
        c->pending = NULL;
    }
    c->state = CONN_CLOSING;
    c->closing_since_ms = t->now_ms;
    loop_begin_close(t, c);
}

static void violation(ingest_thread *t, conn *c, const char *fmt, ...) MAMORI_PRINTF(3, 4);
static void violation(ingest_thread *t, conn *c, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    COUNT(t, protocol_violations, 1);
    conn_close(t, c, reason);
}

void conn_violation(ingest_thread *t, conn *c, const char *reason) { violation(t, c, "%s", reason); }

void conn_on_accept(ingest_thread *t, conn *c)
{
    c->isolation = INGEST_ISOLATION_UNKNOWN;
    c->ssl = SSL_new(t->owner->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    MAMORI_ASSERT(c->ssl && c->rbio && c->wbio);
    BIO_set_mem_eof_return(c->rbio, -1); /* empty read BIO means "want more", not EOF */
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    const mamori_config *cfg = t->owner->cfg;
    c->event_tokens = cfg->ingest.max_events_per_second;
    c->byte_tokens = (double)cfg->ingest.max_bytes_per_second;
    c->tokens_at_ms = c->accepted_ms = c->last_rx_ms = t->now_ms;
}

static void handshake_failed(ingest_thread *t, conn *c)
{
    long vr = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_error();
    char detail[256] = "";
    if (vr != X509_V_OK) snprintf(detail, sizeof detail, "certificate: %s", X509_verify_cert_error_string(vr));
    else if (e) ERR_error_string_n(e, detail, sizeof detail);
    else snprintf(detail, sizeof detail, "peer sent no valid TLS 1.3 handshake");
    ERR_clear_error();
    COUNT(t, handshakes_failed, 1);
    char reason[320];
    snprintf(reason, sizeof reason, "TLS handshake failed: %s", detail);
    conn_close(t, c, reason); /* the TLS alert OpenSSL queued is flushed before closing */
}

static void handle_hello(ingest_thread *t, conn *c, const frame_header *h, const uint8_t *payload)
{
    if (h->length > INGEST_HELLO_MAX_BYTES) {
        violation(t, c, "frame %llu: HELLO of %u bytes over max %u", (unsigned long long)c->frames_in, h->length,
                  INGEST_HELLO_MAX_BYTES);
        return;
    }
    arena_reset(&t->scratch);
    json_value v;
    json_error jerr;
    if (json_parse(t->parser, &t->scratch, (const char *)payload, h->length, &v, &jerr) != 0) {
        violation(t, c, "frame %llu: bad HELLO: invalid JSON at byte %zu: %s", (unsigned long long)c->frames_in,
                  jerr.offset, jerr.msg);
        return;
    }
    const json_value *proto = json_object_get(&v, "protocol", 8);
    if (v.type != JSON_OBJECT || !proto || proto->type != JSON_NUMBER || !(proto->flags & JSON_FLAG_INT)) {
        violation(t, c, "frame %llu: bad HELLO: expected an object with integer \"protocol\"",
                  (unsigned long long)c->frames_in);
        return;
    }
    if (proto->num.i != FRAME_PROTOCOL_VERSION) {
        violation(t, c, "protocol %lld not supported", (long long)proto->num.i);
        return;
    }
    uint64_t resume, acked;
    bool had_owner;
    uint32_t prev_thread, prev_slot, prev_gen;
    const json_value *version = json_object_get(&v, "agent_version", 13);
    bool has_version = json_is_string(version);
    int rc = registry_claim(t->owner, c, t->index, slot_of(t, c), has_version ? version->str : "",
                            has_version ? version->len : 0, &resume, &acked, &had_owner, &prev_thread, &prev_slot,
                            &prev_gen);
    if (rc) {
        conn_close(t, c, "server cannot read agent state; try again later");
        return;
    }
    if (had_owner) {
        COUNT(t, superseded, 1);
        inbox_msg m = {.kind = INBOX_CLOSE, .slot = prev_slot, .gen = prev_gen,
                       .payload = (char *)"superseded by a newer connection"};
        if (prev_thread == t->index) conn_on_inbox(t, &m);
        else loop_post(t->owner, prev_thread, &m);
    }
    const mamori_config *cfg = t->owner->cfg;
    char now[32];
    clock_format_rfc3339(clock_wall_us(), now);
    char welcome[1024];
    int n = snprintf(welcome, sizeof welcome,
                     "{\"protocol\":1,\"agent_id\":\"%s\",\"tenant\":\"%s\",\"resume_seq\":%llu,\"acked_seq\":%llu,"
                     "\"isolation\":\"%s\",\"heartbeat_interval_ms\":%u,\"server_time\":\"%s\","
                     "\"limits\":{\"max_frame_bytes\":%u,\"max_batch_bytes\":%u,\"max_batch_events\":%u,"
                     "\"max_unacked_batches\":%u,\"max_events_per_second\":%u}}",
                     c->agent_id, c->tenant, (unsigned long long)resume, (unsigned long long)acked,
                     conn_resp_desired_isolation(t->owner, c) == 1 ? "isolated" : "none", cfg->ingest.heartbeat_interval_ms, now, cfg->ingest.max_frame_bytes, cfg->ingest.max_batch_bytes,
                     cfg->ingest.max_batch_events, cfg->ingest.max_unacked_batches,
                     cfg->ingest.max_events_per_second);
    MAMORI_ASSERT(n > 0 && (size_t)n < sizeof welcome); /* identities are validated short strings */
    conn_send_frame(t, c, FRAME_WELCOME, 0, 0, welcome, (size_t)n);
    c->state = CONN_READY;
    c->expect_first_batch = true;
    COUNT(t, agents_connected, 1);
    conn_resp_hello(t, c, &v, (const char *)payload, h->length);
    LOG_DEBUG(MOD, "agent ready agent=%s tenant=%s peer=%s resume_seq=%llu acked_seq=%llu", c->agent_id, c->tenant,
              c->peer, (unsigned long long)resume, (unsigned long long)acked);
}

static void check_unacked(ingest_thread *t, conn *c)
{
    uint64_t unacked = registry_unacked(t->owner, c);
    if (unacked >= t->owner->cfg->ingest.max_unacked_batches) {
        if (!(c->pause & PAUSE_UNACKED)) COUNT(t, backpressure_pauses, 1);
        c->pause |= PAUSE_UNACKED;
    } else {
        c->pause &= (uint8_t)~PAUSE_UNACKED;
    }
}

/* Publishes c->pending; keeps it on -EAGAIN. */
static void publish_pending(ingest_thread *t, conn *c)
{
    bool gap;
    char reason[256];
    bus_batch *b = c->pending;
    int rc = registry_publish(t->owner, c, t->index, slot_of(t, c), b, c->expect_first_batch, &gap, reason,
                              sizeof reason);
    if (rc == -EAGAIN) {
        if (!(c->pause & PAUSE_BUS)) COUNT(t, backpressure_pauses, 1);
        c->pause |= PAUSE_BUS;
        return;
    }
    c->pending = NULL;
    c->pause &= (uint8_t)~PAUSE_BUS;
    if (rc == -ESTALE) { /* superseded meanwhile: the newer connection resends it */
        bus_batch_destroy(b);
        conn_close(t, c, "superseded by a newer connection");
        return;
    }
    if (rc) {
        bus_batch_destroy(b);
        violation(t, c, "frame %llu: %s", (unsigned long long)c->frames_in, reason);
        return;
    }
    if (gap) COUNT(t, seq_gaps, 1);
    c->expect_first_batch = false;
    check_unacked(t, c);
}

static void handle_events(ingest_thread *t, conn *c, const frame_header *h, const uint8_t *payload)
{
    MAMORI_ASSERT(!c->pending);
    char reason[256];
    bus_batch *b = NULL;
    if (batch_build(t, c, h, payload, &b, reason, sizeof reason) != 0) {
        violation(t, c, "frame %llu: %s", (unsigned long long)c->frames_in, reason);
        return;
    }
    COUNT(t, batches_received, 1);
    COUNT(t, events_accepted, b->event_count);
    COUNT(t, events_rejected, b->rejected_count);
    c->event_tokens -= (double)(b->event_count + b->rejected_count);
    if (c->event_tokens < 0) {
        if (!(c->pause & PAUSE_RATE)) COUNT(t, backpressure_pauses, 1);
        c->pause |= PAUSE_RATE;
    }
    c->pending = b;
    publish_pending(t, c);
}

static void handle_frame(ingest_thread *t, conn *c, const frame_header *h, const uint8_t *payload)
{
    unsigned long long n = (unsigned long long)c->frames_in;
    if (c->state == CONN_WAIT_HELLO) {
        if (h->type != FRAME_HELLO) {
            violation(t, c, "frame %llu: expected HELLO, got %s", n, frame_type_name(h->type));
            return;
        }
        handle_hello(t, c, h, payload);
        return;
    }
    switch (h->type) {
    case FRAME_EVENTS: handle_events(t, c, h, payload); return;
    case FRAME_PING:
        if (h->length > INGEST_PING_MAX_BYTES) {
            violation(t, c, "frame %llu: PING of %u bytes over max %u", n, h->length, INGEST_PING_MAX_BYTES);
            return;
        }
        conn_send_frame(t, c, FRAME_PONG, 0, h->seq, NULL, 0);
        registry_seen(t->owner, c);
        if (h->length) conn_resp_ping(t, c, payload, h->length);
        return;
    case FRAME_PONG: return;
    case FRAME_RESULT: conn_resp_result(t, c, h, payload); return;
    case FRAME_CLOSE: {
        int len = h->length > 1024 ? 1024 : (int)h->length;
        LOG_RATELIMITED(LOG_LEVEL_INFO, MOD, 20, "agent closed connection agent=%s peer=%s reason=\"%.*s\"", c->agent_id,
                        c->peer, len, (const char *)payload);
        conn_close(t, c, NULL);
        return;
    }
    default: violation(t, c, "frame %llu: unexpected %s from agent", n, frame_type_name(h->type)); return;
    }
}

static void in_compact(conn *c)
{
    if (c->in_off == 0) return;
    size_t rest = c->in.len - c->in_off;
    if (rest) memmove(c->in.data, c->in.data + c->in_off, rest);
    c->in.len = rest;
    c->in_off = 0;
}

void conn_pump(ingest_thread *t, conn *c)
{
    const uint32_t max_frame = t->owner->cfg->ingest.max_frame_bytes;
    if (c->state == CONN_HANDSHAKE) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                loop_flush(t, c);
                loop_arm_recv(t, c);
                return;
            }
            handshake_failed(t, c);
            return;
        }
        if (ingest_tls_identity(c->ssl, c->agent_id, sizeof c->agent_id, c->tenant, sizeof c->tenant) != 0) {
            COUNT(t, handshakes_failed, 1);
            conn_close(t, c, "certificate subject must carry CN (agent id) and O (tenant)");
            return;
        }
        c->tenant_hash = event_tenant_hash(c->tenant);
        c->agent_hash = event_agent_hash(c->tenant, c->agent_id);
        c->state = CONN_WAIT_HELLO;
        c->accepted_ms = t->now_ms; /* HELLO deadline counts from here */
    }
    while ((c->state == CONN_WAIT_HELLO || c->state == CONN_READY) && !c->pause) {
        size_t avail = c->in.len - c->in_off;
        frame_header h;
        const char *why = NULL;
        int r = frame_peek((const uint8_t *)c->in.data + c->in_off, avail, max_frame, &h, &why);
        if (r < 0) {
            unsigned long long n = (unsigned long long)c->frames_in + 1;
            if (h.length > max_frame && h.type >= 1 && h.type <= FRAME_TYPE_MAX && h.reserved == 0)
                violation(t, c, "frame %llu: length %u over max %u", n, h.length, max_frame);
            else if (h.type == 0 || h.type > FRAME_TYPE_MAX)
                violation(t, c, "frame %llu: unknown frame type %u", n, h.type);
            else
                violation(t, c, "frame %llu: %s (%s)", n, why, frame_type_name(h.type));
            return;
        }
        if (r == 1) {
            c->frames_in++;
            const uint8_t *payload = (const uint8_t *)c->in.data + c->in_off + FRAME_HEADER_BYTES;
            c->in_off += FRAME_HEADER_BYTES + h.length;
            handle_frame(t, c, &h, payload);
            if (c->in_off == c->in.len) c->in_off = c->in.len = 0;
            continue;
        }
        /* Need more plaintext: make room for the rest of this frame, then decrypt. */
        size_t need = avail >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + h.length - avail : FRAME_HEADER_BYTES - avail;
        in_compact(c);
        size_t room = need > 16384 ? need : 16384;
        buf_reserve(&c->in, room);
        int got = SSL_read(c->ssl, c->in.data + c->in.len, (int)(c->in.cap - c->in.len));
        if (got > 0) {
            c->in.len += (size_t)got;
            continue;
        }
        int e = SSL_get_error(c->ssl, got);
        if (e == SSL_ERROR_WANT_READ) break;
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN) conn_close(t, c, NULL); /* close_notify */
        else conn_close(t, c, "TLS error while reading");
        return;
    }
    if (c->state >= CONN_CLOSING) return;
    /* An idle connection holds no plaintext buffer (10,000 idle agents must stay cheap). */
    if (c->in.len == 0) buf_fini(&c->in);
    loop_flush(t, c);
    if (!c->pause) loop_arm_recv(t, c);
}

void conn_on_data(ingest_thread *t, conn *c, const char *data, size_t len)
{
    if (c->state >= CONN_CLOSING) return;
    COUNT(t, bytes_received, len);
    c->last_rx_ms = t->now_ms;
    c->byte_tokens -= (double)len;
    if (c->byte_tokens < 0) {
        if (!(c->pause & PAUSE_RATE)) COUNT(t, backpressure_pauses, 1);
        c->pause |= PAUSE_RATE;
    }
    int w = BIO_write(c->rbio, data, (int)len);
    MAMORI_ASSERT(w == (int)len);
    conn_pump(t, c);
}

void conn_on_inbox(ingest_thread *t, const inbox_msg *m)
{
    if (m->slot >= t->conn_capacity) return;
    conn *c = &t->conns[m->slot];
    if (c->gen != m->gen || c->state != CONN_READY) return; /* that connection is gone */
    switch (m->kind) {
    case INBOX_ACK:
        conn_send_frame(t, c, FRAME_ACK, 0, m->seq, m->payload, m->payload_len);
        COUNT(t, batches_acked, 1);
        COUNT(t, ack_latency_us_sum, m->latency_us > 0 ? m->latency_us : 0);
        COUNT(t, ack_latency_count, 1);
        {
            unsigned b = 0;
            while (b < INGEST_ACK_BUCKETS - 1 && (uint64_t)m->latency_us > ingest_ack_bucket_us[b]) b++;
            COUNT(t, ack_latency_buckets[b], 1);
        }
        if (c->pause & PAUSE_UNACKED) {
            check_unacked(t, c);
            if (!c->pause) conn_pump(t, c);
        }
        loop_flush(t, c);
        break;
    case INBOX_CLOSE: conn_close(t, c, m->payload); break;
    case INBOX_COMMAND: conn_resp_command(t, c, m); break;
    default: break;
    }
}

void conn_retry_pending(ingest_thread *t, conn *c)
{
    if (c->state != CONN_READY || !c->pending) return;
    publish_pending(t, c);
    if (!c->pause && c->state == CONN_READY) conn_pump(t, c);
}

void conn_tick(ingest_thread *t, conn *c)
{
    const mamori_config *cfg = t->owner->cfg;
    int64_t now = t->now_ms;
    switch (c->state) {
    case CONN_HANDSHAKE:
    case CONN_WAIT_HELLO:
        if (now - c->accepted_ms > (int64_t)cfg->ingest.handshake_timeout_ms) {
            if (c->state == CONN_HANDSHAKE) COUNT(t, handshakes_failed, 1);
            conn_close(t, c, c->state == CONN_HANDSHAKE ? "TLS handshake timeout" : "HELLO timeout");
        }
        return;
    case CONN_READY: {
        /* While we are not reading (backpressure) the agent's heartbeats cannot arrive:
         * silence then is ours, not the agent's, and never counts as idle. */
        if (c->pause) c->last_rx_ms = now;
        if (now - c->last_rx_ms > 3 * (int64_t)cfg->ingest.heartbeat_interval_ms) {
            conn_close(t, c, "idle timeout");
            return;
        }
        /* token buckets: refill, one second of burst */
        double dt = (double)(now - c->tokens_at_ms) / 1000.0;
        c->tokens_at_ms = now;
        double ev_rate = cfg->ingest.max_events_per_second, by_rate = (double)cfg->ingest.max_bytes_per_second;
        c->event_tokens += ev_rate * dt;
        if (c->event_tokens > ev_rate) c->event_tokens = ev_rate;
        c->byte_tokens += by_rate * dt;
        if (c->byte_tokens > by_rate) c->byte_tokens = by_rate;
        uint8_t before = c->pause;
        if ((c->pause & PAUSE_RATE) && c->event_tokens > 0 && c->byte_tokens > 0) c->pause &= (uint8_t)~PAUSE_RATE;
        if (c->pause & PAUSE_UNACKED) check_unacked(t, c);
        if (c->pause & PAUSE_BUS) publish_pending(t, c);
        c->pause &= (uint8_t)~PAUSE_NOBUF;
        if (c->state == CONN_READY && !c->pause && (before || !c->recv_armed)) conn_pump(t, c);
        return;
    }
    case CONN_CLOSING:
    case CONN_DRAINING:
        if (now - c->closing_since_ms > INGEST_CLOSE_GRACE_MS && c->fd >= 0) {
            shutdown(c->fd, SHUT_RDWR);
            c->state = CONN_DRAINING;
        }
        return;
    default: return;
    }
}

void conn_release(ingest_thread *t, conn *c)
{
    registry_release(t->owner, c, t->index, slot_of(t, c));
    conn_resp_release(c);
    if (c->pending) bus_batch_destroy(c->pending);
    if (c->ssl) SSL_free(c->ssl); /* frees both BIOs */
    buf_fini(&c->in);
    buf_fini(&c->send);
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof *c);
    c->gen = gen;
    c->fd = -1;
    c->state = CONN_FREE;
}
