/* bench/sim/conn.c — one agent's connection: nonblocking TCP connect, the TLS 1.3
 * handshake (server verified against the CA and by name), and the read and write pumps
 * over edge-triggered epoll. Frames go out whole and in order: a write unit is either the
 * control queue (HELLO, PING, PONG, RESULT and file chunks, CLOSE) or one spooled batch, written straight
 * from the spool without a copy. What the frames mean is agent.c's business. */
#include "sim.h"

#include "core/clock.h"
#include "core/frame.h"
#include "core/log.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define MOD "sim"
#define RX_KEEP_BYTES (64u * 1024) /* a bigger receive buffer is freed once empty */

static bool in_handshake(enum agent_state s)
{
    return s == AGENT_CONNECTING || s == AGENT_HANDSHAKE || s == AGENT_HELLO;
}

static int64_t backoff_ms(sim_worker *w, uint32_t attempt)
{
    uint32_t shift = MAMORI_MIN(attempt, 6u);
    uint32_t base = MAMORI_MIN((uint32_t)SIM_BACKOFF_MIN_MS << shift, (uint32_t)SIM_BACKOFF_MAX_MS);
    /* "Equal jitter": half fixed, half random, so a thousand agents spread out. */
    return base / 2 + sim_rng_below(&w->rng, base / 2 + 1);
}

void conn_drop(sim_worker *w, sim_agent *a, bool permanent)
{
    if (in_handshake(a->state)) {
        MAMORI_ASSERT(w->handshakes > 0);
        w->handshakes--;
    }
    if (a->counted_connected) {
        STAT_SUB(&w->counters, connected, 1);
        a->counted_connected = false;
    }
    if (a->ssl) {
        SSL_free(a->ssl);
        a->ssl = NULL;
    }
    if (a->fd >= 0) {
        close(a->fd); /* also leaves the epoll set */
        a->fd = -1;
    }
    ERR_clear_error();
    a->generation++;
    buf_clear(&a->rx);
    if (a->rx.cap > RX_KEEP_BYTES) buf_fini(&a->rx);
    buf_clear(&a->control);
    response_on_disconnect(a);
    a->unit = WRITE_NONE;
    a->unit_off = a->unit_len = 0;
    /* Latency is only measured for batches written and acked on the same connection. */
    for (uint32_t i = 0; i < a->spool.count; i++) spool_at(&a->spool, i)->sent_us = 0;

    int64_t now = clock_mono_ms();
    bool stopping = atomic_load_explicit(&w->run->stop, memory_order_relaxed);
    if (permanent || stopping) {
        /* The end of the run stops everybody; only a permanent refusal is a failure. */
        if (permanent && !stopping && !a->finished) STAT_ADD(&w->counters, failed, 1);
        a->state = AGENT_STOPPED;
        return;
    }
    a->state = AGENT_WAITING;
    a->next_attempt_ms = now + backoff_ms(w, a->backoff_attempt);
    a->backoff_attempt++;
}

/* A connection that failed before WELCOME. */
static void connect_failed(sim_worker *w, sim_agent *a, const char *what, const char *detail)
{
    STAT_ADD(&w->counters, connect_failures, 1);
    LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: %s %s: %s (retrying)", a->identity->agent_id, what,
                    w->run->target.host, detail);
    conn_drop(w, a, false);
}

void conn_queue_frame(sim_agent *a, uint8_t type, uint64_t seq, const void *payload, size_t len)
{
    conn_queue_frame_flags(a, type, 0, seq, payload, len);
}

void conn_queue_frame_flags(sim_agent *a, uint8_t type, uint8_t flags, uint64_t seq, const void *payload, size_t len)
{
    if (a->state == AGENT_CLOSING) return; /* nothing may follow our CLOSE */
    frame_header h = {.length = (uint32_t)len, .type = type, .flags = flags, .seq = seq};
    uint8_t header[FRAME_HEADER_BYTES];
    frame_header_encode(&h, header);
    buf_append(&a->control, header, sizeof header);
    buf_append(&a->control, payload, len);
}

void conn_close_with(sim_worker *w, sim_agent *a, const char *reason, bool reconnect)
{
    if (a->state != AGENT_HELLO && a->state != AGENT_READY) {
        conn_drop(w, a, !reconnect);
        return;
    }
    conn_queue_frame(a, FRAME_CLOSE, 0, reason, strlen(reason));
    if (in_handshake(a->state)) {
        MAMORI_ASSERT(w->handshakes > 0);
        w->handshakes--;
    }
    a->state = AGENT_CLOSING;
    a->close_reconnect = reconnect;
    a->attempt_started_ms = clock_mono_ms();
    (void)conn_flush(w, a);
}

static void set_socket_options(int fd)
{
    int one = 1, idle_s = 30, interval_s = 10, count = 3;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* A server that vanished without a FIN (power loss, partition) is noticed eventually. */
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

void conn_start(sim_worker *w, sim_agent *a, int64_t now_ms)
{
    const sim_target *t = &w->run->target;
    MAMORI_ASSERT(a->state == AGENT_WAITING && a->fd < 0);
    a->generation++;
    a->attempt_started_ms = now_ms;
    a->frames_in = 0;
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        a->state = AGENT_CONNECTING; /* so that conn_drop balances the handshake count */
        w->handshakes++;
        connect_failed(w, a, "socket for", strerror(errno));
        return;
    }
    set_socket_options(fd);
    a->fd = fd;
    a->state = AGENT_CONNECTING;
    w->handshakes++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = ((uint64_t)a->local << 32) | a->generation};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        connect_failed(w, a, "epoll for", strerror(errno));
        return;
    }
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) != 0 && errno != EINPROGRESS) {
        connect_failed(w, a, "connect to", strerror(errno));
        return;
    }
    /* Edge-triggered: EPOLLOUT arrives when the connect completes (or at once). */
}

static bool start_tls(sim_worker *w, sim_agent *a)
{
    const sim_target *t = &w->run->target;
    SSL *ssl = SSL_new(t->ssl_ctx);
    if (!ssl) return false;
    a->ssl = ssl;
    if (!SSL_set_fd(ssl, a->fd)) return false;
    SSL_set_connect_state(ssl);
    if (t->verify_is_ip) {
        /* RFC 6066: no SNI for an IP literal; the IP SAN is checked instead. */
        if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->verify_name)) return false;
    } else {
        if (!SSL_set_tlsext_host_name(ssl, t->verify_name) || !SSL_set1_host(ssl, t->verify_name)) return false;
    }
    const sim_identity *id = a->identity;
    if (SSL_use_certificate_ASN1(ssl, id->cert_der, (int)id->cert_der_len) != 1) return false;
    if (SSL_use_PrivateKey(ssl, id->key) != 1) return false;
    return true;
}

/* Why a TLS call failed, for a log line. */
static const char *tls_failure(sim_agent *a, int ret, int err, char *out, size_t cap)
{
    long verify = a->ssl ? SSL_get_verify_result(a->ssl) : X509_V_OK;
    unsigned long e = ERR_peek_error();
    if (verify != X509_V_OK) {
        snprintf(out, cap, "server certificate rejected: %s", X509_verify_cert_error_string(verify));
    } else if (e) {
        ERR_error_string_n(e, out, cap);
    } else if (err == SSL_ERROR_SYSCALL) {
        snprintf(out, cap, "%s", ret == 0 || errno == 0 ? "connection closed by the server" : strerror(errno));
    } else if (err == SSL_ERROR_ZERO_RETURN) {
        snprintf(out, cap, "server closed the connection (TLS close_notify)");
    } else {
        snprintf(out, cap, "TLS error %d", err);
    }
    ERR_clear_error();
    return out;
}

/* Frames from the bytes just read (data), continuing a partial frame kept in a->rx. */
static int feed(sim_worker *w, sim_agent *a, const uint8_t *data, size_t len)
{
    const uint8_t *p = data;
    size_t avail = len;
    bool from_rx = a->rx.len > 0;
    if (from_rx) {
        buf_append(&a->rx, data, len);
        p = (const uint8_t *)a->rx.data;
        avail = a->rx.len;
    }
    size_t off = 0;
    for (;;) {
        frame_header h;
        const char *reason = NULL;
        int r = frame_peek(p + off, avail - off, a->max_frame_bytes, &h, &reason);
        if (r == 0) break;
        if (r < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "frame %llu: %s", (unsigned long long)(a->frames_in + 1), reason);
            LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: server sent a bad frame: %s", a->identity->agent_id,
                            msg);
            STAT_ADD(&w->counters, protocol_errors, 1);
            conn_close_with(w, a, msg, true);
            return -1;
        }
        a->frames_in++;
        if (agent_on_frame(w, a, h.type, h.flags, h.seq, p + off + FRAME_HEADER_BYTES, h.length) < 0) return -1;
        off += FRAME_HEADER_BYTES + h.length;
    }
    if (from_rx) {
        memmove(a->rx.data, a->rx.data + off, a->rx.len - off);
        a->rx.len -= off;
        if (a->rx.len == 0 && a->rx.cap > RX_KEEP_BYTES) buf_fini(&a->rx);
    } else if (off < avail) {
        buf_append(&a->rx, p + off, avail - off);
    }
    return 0;
}

static int conn_read(sim_worker *w, sim_agent *a)
{
    for (;;) {
        int n = SSL_read(a->ssl, w->read_buf, (int)w->read_buf_bytes);
        if (n > 0) {
            if (feed(w, a, w->read_buf, (size_t)n) < 0) return -1;
            if (a->state != AGENT_HELLO && a->state != AGENT_READY && a->state != AGENT_CLOSING) return -1;
            continue;
        }
        int err = SSL_get_error(a->ssl, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 0;
        char why[256];
        tls_failure(a, n, err, why, sizeof why);
        if (a->state == AGENT_HELLO) {
            /* The server checks our certificate after the client side of the handshake
             * finished: a refusal shows up here. */
            connect_failed(w, a, "no WELCOME from", why);
        } else {
            STAT_ADD(&w->counters, server_closes, 1);
            LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: connection lost: %s (reconnecting)",
                            a->identity->agent_id, why);
            conn_drop(w, a, false);
        }
        return -1;
    }
}

int conn_flush(sim_worker *w, sim_agent *a)
{
    if (!a->ssl || (a->state != AGENT_HELLO && a->state != AGENT_READY && a->state != AGENT_CLOSING)) return 0;
    for (;;) {
        sim_batch *batch = NULL;
        if (a->unit == WRITE_NONE) {
            if (a->control.len) {
                a->unit = WRITE_CONTROL;
                a->unit_len = a->control.len;
            } else if (a->state == AGENT_READY && a->tx_seq < a->next_seq) {
                batch = spool_find(&a->spool, a->tx_seq);
                MAMORI_ASSERT(batch);
                a->unit = WRITE_BATCH;
                a->unit_len = batch->frame.len;
            } else {
                break;
            }
            a->unit_off = 0;
        }
        const char *data;
        if (a->unit == WRITE_CONTROL) {
            data = a->control.data;
        } else {
            if (!batch) batch = spool_find(&a->spool, a->tx_seq);
            MAMORI_ASSERT(batch && batch->frame.len == a->unit_len);
            data = batch->frame.data;
        }
        int n = SSL_write(a->ssl, data + a->unit_off, (int)(a->unit_len - a->unit_off));
        if (n <= 0) {
            int err = SSL_get_error(a->ssl, n);
            if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return 0;
            char why[256];
            tls_failure(a, n, err, why, sizeof why);
            STAT_ADD(&w->counters, server_closes, 1);
            LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: write failed: %s (reconnecting)", a->identity->agent_id,
                            why);
            conn_drop(w, a, a->state == AGENT_CLOSING && !a->close_reconnect);
            return -1;
        }
        a->unit_off += (size_t)n;
        STAT_ADD(&w->counters, bytes_frames, n);
        if (a->unit_off < a->unit_len) continue;
        if (a->unit == WRITE_CONTROL) {
            memmove(a->control.data, a->control.data + a->unit_len, a->control.len - a->unit_len);
            a->control.len -= a->unit_len;
        } else {
            batch->sent_us = clock_mono_us();
            a->tx_seq++;
        }
        a->unit = WRITE_NONE;
        a->last_tx_ms = clock_mono_ms();
    }
    if (a->state == AGENT_CLOSING) {
        /* Our CLOSE is out: close_notify, then the socket (protocol §4.7). */
        (void)SSL_shutdown(a->ssl);
        conn_drop(w, a, !a->close_reconnect);
        return -1;
    }
    return 0;
}

void conn_on_event(sim_worker *w, sim_agent *a, uint32_t events, int64_t now_ms)
{
    if (a->state == AGENT_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
        if (so_error) {
            connect_failed(w, a, "connect to", strerror(so_error));
            return;
        }
        if (!start_tls(w, a)) {
            char why[256];
            connect_failed(w, a, "TLS setup for", tls_failure(a, 0, SSL_ERROR_SSL, why, sizeof why));
            return;
        }
        a->state = AGENT_HANDSHAKE;
    }
    if (a->state == AGENT_HANDSHAKE) {
        int r = SSL_do_handshake(a->ssl);
        if (r != 1) {
            int err = SSL_get_error(a->ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
            char why[256];
            connect_failed(w, a, "TLS handshake with", tls_failure(a, r, err, why, sizeof why));
            return;
        }
        a->state = AGENT_HELLO;
        agent_queue_hello(w, a);
        events |= EPOLLIN | EPOLLOUT; /* data may already be buffered: edge-triggered */
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (conn_read(w, a) < 0) return;
    }
    if (a->state == AGENT_READY) agent_produce(w, a, now_ms);
    if (conn_flush(w, a) == 0 && a->state == AGENT_READY && a->response) {
        /* A transfer continues as soon as its chunks are written. */
        response_pump(w, a);
        (void)conn_flush(w, a);
    }
}
