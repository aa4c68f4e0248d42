/* ingest/loop.c — the io_uring side of ingest: one ring per thread, a multishot accept on
 * the thread's own SO_REUSEPORT socket, receives into kernel-selected provided buffers (an
 * idle connection holds no receive buffer), sends of TLS ciphertext, a 50 ms tick for
 * timeouts and rate limits, and an eventfd that wakes the thread for cross-thread
 * messages (ACKs from the store thread, supersede orders, bus wakeups).
 * Loop order per pass: submit and wait, drain every completion, return buffers, then
 * handle wakeups. user_data = op | slot | generation, never a pointer. */
#include "internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"

#define MOD "ingest"
#define BUFFER_GROUP 1

const uint64_t ingest_ack_bucket_us[INGEST_ACK_BUCKETS - 1] = {
    500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000, 2000000, 5000000};

enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_TIMER, OP_EVENTFD, OP_CANCEL };

static inline uint64_t make_ud(enum op op, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)op << 56) | ((uint64_t)(slot & 0xFFFFFF) << 32) | gen;
}
static inline enum op ud_op(uint64_t ud) { return (enum op)(ud >> 56); }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xFFFFFF; }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)ud; }

static struct io_uring_sqe *get_sqe(ingest_thread *t)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
    if (!sqe) {
        io_uring_submit(&t->ring);
        sqe = io_uring_get_sqe(&t->ring);
    }
    MAMORI_ASSERT(sqe);
    return sqe;
}

static uint32_t slot_of(ingest_thread *t, conn *c) { return (uint32_t)(c - t->conns); }

void loop_arm_recv(ingest_thread *t, conn *c)
{
    if (c->recv_armed || c->fd < 0 || c->state >= CONN_CLOSING || c->state == CONN_WAIT_BUDGET) return;
    struct io_uring_sqe *sqe = get_sqe(t);
    io_uring_prep_recv(sqe, c->fd, NULL, t->buf_size, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUFFER_GROUP;
    io_uring_sqe_set_data64(sqe, make_ud(OP_RECV, slot_of(t, c), c->gen));
    c->recv_armed = true;
    c->ops_in_flight++;
}

static void submit_send(ingest_thread *t, conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(t);
    io_uring_prep_send(sqe, c->fd, c->send.data + c->send_off, c->send.len - c->send_off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, make_ud(OP_SEND, slot_of(t, c), c->gen));
    c->send_armed = true;
    c->ops_in_flight++;
}

static void maybe_release(ingest_thread *t, conn *c)
{
    if (c->state != CONN_DRAINING || c->ops_in_flight) return;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    conn_release(t, c);
    t->free_slots[t->free_count++] = slot_of(t, c);
    atomic_fetch_sub(&t->counters.connections_active, 1);
}

static void start_draining(ingest_thread *t, conn *c)
{
    if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR); /* completes an armed recv */
    c->state = CONN_DRAINING;
    maybe_release(t, c);
}

void loop_flush(ingest_thread *t, conn *c)
{
    if (c->send_armed || c->fd < 0 || c->state == CONN_DRAINING || c->state == CONN_FREE) return;
    size_t pending = BIO_ctrl_pending(c->wbio);
    if (pending == 0) {
        if (c->state == CONN_CLOSING) start_draining(t, c);
        else if (c->state == CONN_READY && !c->bios_renewed && BIO_ctrl_pending(c->rbio) == 0) {
            /* Memory BIOs keep the capacity of the largest flight they carried (the
             * handshake); give an established, idle connection small ones. */
            BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
            MAMORI_ASSERT(r && w);
            BIO_set_mem_eof_return(r, -1);
            SSL_set_bio(c->ssl, r, w); /* frees the old pair */
            c->rbio = r;
            c->wbio = w;
            c->bios_renewed = true;
        }
        return;
    }
    if (pending > INGEST_OUTPUT_MAX_BYTES) {
        /* The peer stopped reading what we send: nothing more can be said to it. */
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 20, "dropping unresponsive peer=%s agent=%s unsent_bytes=%zu", c->peer,
                        c->agent_id, pending);
        if (c->state < CONN_CLOSING) conn_close(t, c, NULL);
        start_draining(t, c);
        return;
    }
    buf_clear(&c->send);
    buf_reserve(&c->send, pending);
    int n = BIO_read(c->wbio, c->send.data, (int)pending);
    MAMORI_ASSERT(n == (int)pending);
    c->send.len = (size_t)n;
    c->send_off = 0;
    submit_send(t, c);
}

void loop_begin_close(ingest_thread *t, conn *c) { loop_flush(t, c); }

void loop_post(ingest *in, uint32_t thread, const inbox_msg *msg)
{
    ingest_thread *t = &in->threads[thread];
    pthread_mutex_lock(&t->inbox_lock);
    if (t->inbox_len == t->inbox_cap) {
        t->inbox_cap = t->inbox_cap ? t->inbox_cap * 2 : 64;
        t->inbox = mamori_xrealloc(t->inbox, t->inbox_cap * sizeof *t->inbox);
    }
    t->inbox[t->inbox_len++] = *msg;
    bool first = t->inbox_len == 1;
    pthread_mutex_unlock(&t->inbox_lock);
    if (first) {
        uint64_t one = 1;
        ssize_t w = write(t->event_fd, &one, sizeof one);
        (void)w;
    }
}

static void wake(ingest_thread *t)
{
    uint64_t one = 1;
    ssize_t w = write(t->event_fd, &one, sizeof one);
    (void)w;
}

static void arm_accept(ingest_thread *t)
{
    if (t->accept_armed || t->listen_fd < 0) return;
    struct io_uring_sqe *sqe = get_sqe(t);
    io_uring_prep_multishot_accept(sqe, t->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, make_ud(OP_ACCEPT, 0, 0));
    t->accept_armed = true;
}

static void arm_eventfd(ingest_thread *t)
{
    struct io_uring_sqe *sqe = get_sqe(t);
    io_uring_prep_read(sqe, t->event_fd, &t->event_fd_value, sizeof t->event_fd_value, 0);
    io_uring_sqe_set_data64(sqe, make_ud(OP_EVENTFD, 0, 0));
}

static void arm_timer(ingest_thread *t)
{
    t->tick.tv_sec = 0;
    t->tick.tv_nsec = INGEST_TICK_MS * 1000000L;
    struct io_uring_sqe *sqe = get_sqe(t);
    io_uring_prep_timeout(sqe, &t->tick, 0, 0);
    io_uring_sqe_set_data64(sqe, make_ud(OP_TIMER, 0, 0));
}

static void start_handshake(ingest_thread *t, conn *c)
{
    c->state = CONN_HANDSHAKE;
    c->accepted_ms = t->now_ms;
    loop_arm_recv(t, c);
}

static void on_accept(ingest_thread *t, struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) t->accept_armed = false;
    int fd = cqe->res;
    if (fd < 0) {
        if (fd != -ECANCELED)
            LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "accept failed: %s", strerror(-fd));
        return;
    }
    if (t->stopping || t->free_count == 0) {
        close(fd);
        COUNT(t, connections_refused_full, 1);
        LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "connection refused: %s (%u slots per thread)",
                        t->stopping ? "shutting down" : "ingest.max_connections reached", t->conn_capacity);
        return;
    }
    uint32_t slot = t->free_slots[--t->free_count];
    conn *c = &t->conns[slot];
    MAMORI_ASSERT(c->state == CONN_FREE);
    c->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[48] = "?", port[8] = "?";
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(c->peer, sizeof c->peer, "%s:%s", host, port);
    sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(c->local, sizeof c->local, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    COUNT(t, connections_accepted, 1);
    COUNT(t, connections_active, 1);
    conn_on_accept(t, c);
    if (t->handshake_tokens >= 1.0) {
        t->handshake_tokens -= 1.0;
        start_handshake(t, c);
    } else {
        c->state = CONN_WAIT_BUDGET;
        uint32_t pos = (t->waiting_head + t->waiting_count) % t->conn_capacity;
        t->waiting[pos].slot = slot;
        t->waiting[pos].gen = c->gen;
        t->waiting_count++;
    }
}

static void on_recv(ingest_thread *t, conn *c, struct io_uring_cqe *cqe)
{
    c->recv_armed = false;
    c->ops_in_flight--;
    int res = cqe->res;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        char *data = t->buf_base + (size_t)bid * t->buf_size;
        if (res > 0 && c->state < CONN_CLOSING) conn_on_data(t, c, data, (size_t)res);
        io_uring_buf_ring_add(t->buf_ring, data, t->buf_size, (unsigned short)bid,
                              io_uring_buf_ring_mask(t->buf_count), (int)t->bufs_to_return++);
    } else if (res > 0) {
        mamori_panic(__FILE__, __LINE__, "recv completed without a provided buffer");
    }
    if (res == 0) {
        c->peer_closed = true;
        if (c->state < CONN_CLOSING) conn_close(t, c, NULL);
        if (c->state == CONN_CLOSING && !c->send_armed) start_draining(t, c);
    } else if (res == -ENOBUFS) {
        c->pause |= PAUSE_NOBUF; /* all receive buffers in use: retried at the next tick */
    } else if (res < 0 && res != -EINTR && res != -EAGAIN) {
        if (c->state < CONN_CLOSING) conn_close(t, c, NULL);
        if (!c->send_armed) start_draining(t, c);
    } else if (res < 0 && c->state < CONN_CLOSING && !c->pause) {
        loop_arm_recv(t, c);
    }
    maybe_release(t, c);
}

static void on_send(ingest_thread *t, conn *c, struct io_uring_cqe *cqe)
{
    c->send_armed = false;
    c->ops_in_flight--;
    int res = cqe->res;
    if (res < 0) {
        if (res == -EINTR || res == -EAGAIN) {
            submit_send(t, c);
            return;
        }
        if (c->state < CONN_CLOSING) conn_close(t, c, NULL);
        start_draining(t, c);
        return;
    }
    c->send_off += (size_t)res;
    if (c->send_off < c->send.len) {
        submit_send(t, c);
        return;
    }
    buf_fini(&c->send); /* nothing held while idle; refilled from the TLS write BIO */
    loop_flush(t, c);
    maybe_release(t, c);
}

static void drain_inbox(ingest_thread *t)
{
    pthread_mutex_lock(&t->inbox_lock);
    inbox_msg *msgs = t->inbox;
    size_t n = t->inbox_len;
    t->inbox = NULL;
    t->inbox_len = t->inbox_cap = 0;
    pthread_mutex_unlock(&t->inbox_lock);
    for (size_t i = 0; i < n; i++) {
        conn_on_inbox(t, &msgs[i]);
        if (inbox_owns_payload(&msgs[i])) free(msgs[i].payload);
    }
    free(msgs);
}

static void retry_pending(ingest_thread *t)
{
    if (!t->pending_conns) return;
    uint32_t still = 0;
    for (uint32_t i = 0; i < t->conn_capacity; i++) {
        conn *c = &t->conns[i];
        if (!c->pending) continue;
        conn_retry_pending(t, c);
        if (c->pending) still++;
    }
    t->pending_conns = still;
}

static void on_tick(ingest_thread *t)
{
    const mamori_config *cfg = t->owner->cfg;
    double rate = cfg->ingest.max_handshakes_per_second;
    t->handshake_tokens += rate * (double)(t->now_ms - t->handshake_tokens_at_ms) / 1000.0;
    if (t->handshake_tokens > rate / 10 + 1) t->handshake_tokens = rate / 10 + 1; /* 100 ms of burst */
    t->handshake_tokens_at_ms = t->now_ms;
    while (t->waiting_count && t->handshake_tokens >= 1.0) {
        uint32_t slot = t->waiting[t->waiting_head].slot, gen = t->waiting[t->waiting_head].gen;
        t->waiting_head = (t->waiting_head + 1) % t->conn_capacity;
        t->waiting_count--;
        conn *c = &t->conns[slot];
        if (c->gen != gen || c->state != CONN_WAIT_BUDGET) continue;
        t->handshake_tokens -= 1.0;
        start_handshake(t, c);
    }
    uint32_t pending = 0;
    for (uint32_t i = 0; i < t->conn_capacity; i++) {
        conn *c = &t->conns[i];
        if (c->state == CONN_FREE) continue;
        if (c->state == CONN_WAIT_BUDGET) {
            if (t->now_ms - c->accepted_ms > (int64_t)cfg->ingest.handshake_timeout_ms) {
                COUNT(t, handshakes_failed, 1);
                c->state = CONN_CLOSING;
                start_draining(t, c);
            }
            continue;
        }
        conn_tick(t, c);
        if (c->pending) pending++;
        maybe_release(t, c);
    }
    t->pending_conns = pending;
    if (!t->accept_armed && !t->stopping) arm_accept(t);
}

static void begin_stop(ingest_thread *t)
{
    t->stopping = true;
    if (t->accept_armed) {
        struct io_uring_sqe *sqe = get_sqe(t);
        io_uring_prep_cancel64(sqe, make_ud(OP_ACCEPT, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, make_ud(OP_CANCEL, 0, 0));
    }
    for (uint32_t i = 0; i < t->conn_capacity; i++) {
        conn *c = &t->conns[i];
        if (c->state == CONN_FREE) continue;
        if (c->state == CONN_WAIT_BUDGET) {
            c->state = CONN_CLOSING;
            start_draining(t, c);
            continue;
        }
        conn_close(t, c, c->state >= CONN_WAIT_HELLO ? "server shutting down" : NULL);
    }
}

static void handle_cqe(ingest_thread *t, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    switch (ud_op(ud)) {
    case OP_ACCEPT: on_accept(t, cqe); return;
    case OP_RECV:
    case OP_SEND: {
        uint32_t slot = ud_slot(ud);
        MAMORI_ASSERT(slot < t->conn_capacity);
        conn *c = &t->conns[slot];
        /* a slot is never reused while it has operations in flight */
        MAMORI_ASSERT(c->gen == ud_gen(ud) && c->state != CONN_FREE);
        if (ud_op(ud) == OP_RECV) on_recv(t, c, cqe);
        else on_send(t, c, cqe);
        return;
    }
    case OP_TIMER:
        on_tick(t);
        arm_timer(t);
        return;
    case OP_EVENTFD:
        drain_inbox(t);
        arm_eventfd(t);
        return;
    case OP_CANCEL: return;
    }
    mamori_panic(__FILE__, __LINE__, "unknown completion op %d", (int)ud_op(ud));
}

static void *thread_main(void *arg)
{
    ingest_thread *t = arg;
    char name[16];
    snprintf(name, sizeof name, "ingest-%u", t->index);
    pthread_setname_np(pthread_self(), name);
    t->now_ms = clock_mono_ms();
    t->handshake_tokens_at_ms = t->now_ms;
    t->handshake_tokens = t->owner->cfg->ingest.max_handshakes_per_second / 10.0 + 1;
    arm_accept(t);
    arm_eventfd(t);
    arm_timer(t);
    int64_t stop_deadline = 0;
    for (;;) {
        int rc = io_uring_submit_and_wait(&t->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EBUSY)
            LOG_RATELIMITED(LOG_LEVEL_ERROR, MOD, 1, "io_uring_submit_and_wait: %s", strerror(-rc));
        t->now_ms = clock_mono_ms();
        unsigned head, n = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&t->ring, head, cqe)
        {
            handle_cqe(t, cqe);
            n++;
        }
        io_uring_cq_advance(&t->ring, n);
        if (t->bufs_to_return) {
            io_uring_buf_ring_advance(t->buf_ring, (int)t->bufs_to_return);
            t->bufs_to_return = 0;
        }
        if (atomic_exchange(&t->bus_wakeup, false)) retry_pending(t);
        if (atomic_load(&t->owner->stop) && !t->stopping) {
            begin_stop(t);
            stop_deadline = t->now_ms + 3000;
        }
        if (t->stopping &&
            (atomic_load(&t->counters.connections_active) == 0 || t->now_ms > stop_deadline))
            break;
    }
    return NULL;
}

/* ---- set-up and tear-down ---- */

static void on_bus_wakeup(void *ctx)
{
    ingest *in = ctx;
    for (uint32_t i = 0; i < in->thread_count; i++) {
        atomic_store(&in->threads[i].bus_wakeup, true);
        wake(&in->threads[i]);
    }
}

static int listen_socket(const char *listen_addr, uint16_t port_override, bool use_override, uint16_t *bound_port,
                         char *err, size_t err_len)
{
    char host[256];
    const char *colon = strrchr(listen_addr, ':');
    size_t hlen = (size_t)(colon - listen_addr);
    if (hlen >= sizeof host) hlen = sizeof host - 1;
    memcpy(host, listen_addr, hlen);
    host[hlen] = '\0';
    char *h = host;
    if (h[0] == '[' && hlen > 1 && h[hlen - 1] == ']') {
        h[hlen - 1] = '\0';
        h++;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", use_override ? port_override : (unsigned)atoi(colon + 1));
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(h, port, &hints, &ai);
    if (gai) {
        snprintf(err, err_len, "ingest.listen '%s': %s", listen_addr, gai_strerror(gai));
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) || bind(fd, ai->ai_addr, ai->ai_addrlen) ||
        listen(fd, 4096)) {
        int e = errno;
        snprintf(err, err_len, "ingest.listen '%s': %s", listen_addr, strerror(e));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -e;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static int thread_init(ingest *in, ingest_thread *t, uint32_t index, char *err, size_t err_len)
{
    const mamori_config *cfg = in->cfg;
    t->owner = in;
    t->index = index;
    t->event_fd = -1;
    t->conn_capacity = cfg->ingest.max_connections / in->thread_count;
    if (t->conn_capacity == 0) t->conn_capacity = 1;
    struct io_uring_params params = {0};
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    uint32_t cq = t->conn_capacity * 2 + 1024;
    params.cq_entries = cq > 65536 ? 65536 : cq;
    int rc = io_uring_queue_init_params(4096, &t->ring, &params);
    if (rc < 0) {
        params.flags = IORING_SETUP_CQSIZE; /* older kernels */
        rc = io_uring_queue_init_params(4096, &t->ring, &params);
    }
    if (rc < 0) {
        snprintf(err, err_len, "io_uring_queue_init: %s", strerror(-rc));
        return rc;
    }
    t->buf_count = cfg->ingest.recv_buffers;
    t->buf_size = cfg->ingest.recv_buffer_bytes;
    size_t ring_bytes = (size_t)t->buf_count * sizeof(struct io_uring_buf);
    void *ring_mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring_mem == MAP_FAILED) {
        snprintf(err, err_len, "mmap buffer ring: %s", strerror(errno));
        return -ENOMEM;
    }
    t->buf_ring = ring_mem;
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)ring_mem, .ring_entries = t->buf_count,
                                   .bgid = BUFFER_GROUP};
    rc = io_uring_register_buf_ring(&t->ring, &reg, 0);
    if (rc) {
        snprintf(err, err_len, "io_uring_register_buf_ring: %s (kernel too old for provided buffer rings?)",
                 strerror(-rc));
        return rc;
    }
    io_uring_buf_ring_init(t->buf_ring);
    t->buf_base = aligned_alloc(4096, (size_t)t->buf_count * t->buf_size);
    MAMORI_ASSERT(t->buf_base);
    for (uint32_t i = 0; i < t->buf_count; i++)
        io_uring_buf_ring_add(t->buf_ring, t->buf_base + (size_t)i * t->buf_size, t->buf_size, (unsigned short)i,
                              io_uring_buf_ring_mask(t->buf_count), (int)i);
    io_uring_buf_ring_advance(t->buf_ring, (int)t->buf_count);

    t->conns = mamori_xcalloc(t->conn_capacity, sizeof *t->conns);
    t->free_slots = mamori_xmalloc(t->conn_capacity * sizeof *t->free_slots);
    t->waiting = mamori_xcalloc(t->conn_capacity, sizeof *t->waiting);
    for (uint32_t i = 0; i < t->conn_capacity; i++) {
        t->conns[i].fd = -1;
        t->free_slots[i] = t->conn_capacity - 1 - i;
    }
    t->free_count = t->conn_capacity;
    t->event_fd = eventfd(0, EFD_CLOEXEC);
    if (t->event_fd < 0) {
        snprintf(err, err_len, "eventfd: %s", strerror(errno));
        return -errno;
    }
    pthread_mutex_init(&t->inbox_lock, NULL);
    t->parser = json_parser_create();
    t->norm = normalizer_create();
    t->zstd = ZSTD_createDCtx();
    arena_init(&t->scratch, 16384);
    buf_init(&t->ack_buf);
    buf_init(&t->err_buf);
    return 0;
}

static void thread_fini(ingest_thread *t)
{
    if (!t->owner) return;
    for (uint32_t i = 0; t->conns && i < t->conn_capacity; i++) {
        conn *c = &t->conns[i];
        if (c->state == CONN_FREE) continue;
        if (c->fd >= 0) close(c->fd);
        c->fd = -1;
        conn_release(t, c);
    }
    if (t->ring.ring_fd > 0) io_uring_queue_exit(&t->ring);
    if (t->buf_ring) munmap(t->buf_ring, (size_t)t->buf_count * sizeof(struct io_uring_buf));
    free(t->buf_base);
    free(t->conns);
    free(t->free_slots);
    free(t->waiting);
    if (t->listen_fd >= 0) close(t->listen_fd);
    if (t->event_fd >= 0) close(t->event_fd);
    pthread_mutex_destroy(&t->inbox_lock);
    for (size_t i = 0; i < t->inbox_len; i++)
        if (inbox_owns_payload(&t->inbox[i])) free(t->inbox[i].payload);
    free(t->inbox);
    json_parser_destroy(t->parser);
    normalizer_destroy(t->norm);
    ZSTD_freeDCtx(t->zstd);
    arena_fini(&t->scratch);
    buf_fini(&t->ack_buf);
    buf_fini(&t->err_buf);
}

int ingest_create(const ingest_options *opt, ingest **out, char *err, size_t err_len)
{
    ingest *in = mamori_xcalloc(1, sizeof *in);
    in->cfg = opt->cfg;
    in->bus = opt->bus;
    in->durable_seq = opt->durable_seq;
    in->durable_seq_ctx = opt->durable_seq_ctx;
    in->on_agent_event = opt->on_agent_event;
    in->desired_isolation = opt->desired_isolation;
    in->response_ctx = opt->response_ctx;
    in->thread_count = opt->cfg->ingest.threads;
    registry_init(&in->reg);
    int rc = ingest_tls_create(opt->cfg, &in->ssl_ctx, err, err_len);
    if (rc) goto fail;
    in->threads = mamori_xcalloc(in->thread_count, sizeof *in->threads);
    for (uint32_t i = 0; i < in->thread_count; i++) in->threads[i].listen_fd = -1;
    for (uint32_t i = 0; i < in->thread_count; i++) {
        uint16_t port = 0;
        int fd = listen_socket(opt->cfg->ingest.listen, in->port, i > 0, &port, err, err_len);
        if (fd < 0) {
            rc = fd;
            goto fail;
        }
        in->threads[i].listen_fd = fd;
        in->port = port;
        rc = thread_init(in, &in->threads[i], i, err, err_len);
        if (rc) goto fail;
    }
    rc = bus_on_wakeup(in->bus, on_bus_wakeup, in);
    if (rc) {
        snprintf(err, err_len, "bus_on_wakeup: %s", strerror(-rc));
        goto fail;
    }
    *out = in;
    return 0;
fail:
    ingest_destroy(in);
    return rc;
}

int ingest_start(ingest *in)
{
    for (uint32_t i = 0; i < in->thread_count; i++) {
        int rc = pthread_create(&in->threads[i].thread, NULL, thread_main, &in->threads[i]);
        if (rc) return -rc;
    }
    LOG_INFO(MOD, "listening port=%u threads=%u max_connections=%u", in->port, in->thread_count,
             in->cfg->ingest.max_connections);
    return 0;
}

uint16_t ingest_port(const ingest *in) { return in->port; }

void ingest_stop(ingest *in)
{
    if (atomic_exchange(&in->stop, true)) return;
    for (uint32_t i = 0; i < in->thread_count; i++) wake(&in->threads[i]);
    for (uint32_t i = 0; i < in->thread_count; i++)
        if (in->threads[i].thread) pthread_join(in->threads[i].thread, NULL);
}

void ingest_destroy(ingest *in)
{
    if (!in) return;
    for (uint32_t i = 0; in->threads && i < in->thread_count; i++) thread_fini(&in->threads[i]);
    free(in->threads);
    if (in->ssl_ctx) SSL_CTX_free(in->ssl_ctx);
    registry_fini(&in->reg);
    free(in);
}

void ingest_get_stats(ingest *in, ingest_stats *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < in->thread_count; i++) {
        ingest_counters *k = &in->threads[i].counters;
#define SUM(f) out->f += atomic_load_explicit(&k->f, memory_order_relaxed)
        SUM(connections_accepted);
        SUM(connections_active);
        SUM(connections_refused_full);
        SUM(handshakes_failed);
        SUM(agents_connected);
        SUM(protocol_violations);
        SUM(superseded);
        SUM(batches_received);
        SUM(batches_acked);
        SUM(events_accepted);
        SUM(events_rejected);
        SUM(bytes_received);
        SUM(backpressure_pauses);
        SUM(seq_gaps);
        SUM(ack_latency_us_sum);
        SUM(ack_latency_count);
        SUM(events_rejected_invalid_json);
        SUM(events_rejected_invalid_event);
        SUM(commands_sent);
        SUM(results_received);
        SUM(results_unexpected);
        SUM(file_chunks);
        SUM(files_rejected);
        for (unsigned b = 0; b < INGEST_ACK_BUCKETS; b++) SUM(ack_latency_buckets[b]);
#undef SUM
    }
}
