/* bench/sim/worker.c — one thread driving a slice of the agents: an edge-triggered epoll
 * loop for their sockets plus a 10 ms tick for everything timed (connect attempts under a
 * cap on concurrent handshakes, backoff, handshake timeouts, rate credit, batch flushes,
 * heartbeats). Nothing is shared with other workers except the read-only run setup and
 * the counters the main thread reads. */
#include "sim.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MOD "sim"
#define EVENTS_PER_WAIT 256
#define READ_BUF_BYTES (64u * 1024)
#define CLOSING_TIMEOUT_MS 5000

int worker_init(sim_worker *w, sim_run *run, uint32_t id, uint32_t first_agent, uint32_t agent_count)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->run = run;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        LOG_ERROR(MOD, "worker %u: epoll_create1: %s", id, strerror(errno));
        return -errno;
    }
    const sim_options *opt = &run->opt;
    w->rng = (opt->seed ^ (0x9E3779B97F4A7C15ULL * (id + 1))) | 1;
    uint32_t threads = opt->threads ? opt->threads : 1;
    w->handshake_cap = MAMORI_MAX(1u, opt->max_handshakes / threads);
    w->rate_per_agent = opt->rate_eps > 0 ? opt->rate_eps / opt->agents : 0;
    w->cctx = ZSTD_createCCtx();
    MAMORI_ASSERT(w->cctx);
    size_t zr = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, opt->zstd_level);
    MAMORI_ASSERT(!ZSTD_isError(zr));
    buf_init(&w->render);
    w->json = json_parser_create();
    arena_init(&w->json_arena, 16 * 1024);
    w->read_buf_bytes = READ_BUF_BYTES;
    w->read_buf = mamori_xmalloc(w->read_buf_bytes);
    w->agent_count = agent_count;
    w->agents = mamori_xcalloc(agent_count ? agent_count : 1, sizeof *w->agents);
    for (uint32_t i = 0; i < agent_count; i++) agent_init(w, &w->agents[i], first_agent + i, i);
    return 0;
}

void worker_fini(sim_worker *w)
{
    for (uint32_t i = 0; i < w->agent_count; i++) agent_fini(&w->agents[i]);
    free(w->agents);
    free(w->read_buf);
    arena_fini(&w->json_arena);
    json_parser_destroy(w->json);
    buf_fini(&w->render);
    ZSTD_freeCCtx(w->cctx);
    if (w->epfd >= 0) close(w->epfd);
    memset(w, 0, sizeof *w);
    w->epfd = -1;
}

/* Starts connections of waiting agents whose time has come, round-robin, while fewer
 * than handshake_cap handshakes are under way: a thousand agents never stampede. */
static void start_connections(sim_worker *w, int64_t now_ms)
{
    if (!w->agent_count) return;
    uint32_t scanned = 0;
    while (w->handshakes < w->handshake_cap && scanned < w->agent_count) {
        sim_agent *a = &w->agents[w->connect_cursor];
        w->connect_cursor = (w->connect_cursor + 1) % w->agent_count;
        scanned++;
        if (a->state == AGENT_WAITING && a->next_attempt_ms <= now_ms) conn_start(w, a, now_ms);
    }
}

static void tick(sim_worker *w, int64_t now_ms, double dt_s)
{
    for (uint32_t i = 0; i < w->agent_count; i++) {
        sim_agent *a = &w->agents[i];
        switch (a->state) {
        case AGENT_CONNECTING:
        case AGENT_HANDSHAKE:
        case AGENT_HELLO:
            if (now_ms - a->attempt_started_ms > SIM_HANDSHAKE_TIMEOUT_MS) {
                STAT_ADD(&w->counters, connect_failures, 1);
                LOG_RATELIMITED(LOG_LEVEL_WARN, MOD, 5, "agent %s: no WELCOME within %d ms (retrying)",
                                a->identity->agent_id, SIM_HANDSHAKE_TIMEOUT_MS);
                conn_drop(w, a, false);
            }
            break;
        case AGENT_CLOSING:
            if (now_ms - a->attempt_started_ms > CLOSING_TIMEOUT_MS) conn_drop(w, a, !a->close_reconnect);
            break;
        default: break;
        }
        agent_tick(w, a, now_ms, dt_s);
    }
    start_connections(w, now_ms);
}

/* End of the run: CLOSE every connection (protocol §4.7), give the frames a moment to
 * leave, then close whatever is left. */
static void shut_down(sim_worker *w)
{
    for (uint32_t i = 0; i < w->agent_count; i++) {
        sim_agent *a = &w->agents[i];
        if (a->state == AGENT_HELLO || a->state == AGENT_READY) conn_close_with(w, a, "simulation finished", false);
        else if (a->state != AGENT_CLOSING) conn_drop(w, a, false);
    }
    int64_t deadline = clock_mono_ms() + SIM_CLOSE_GRACE_MS;
    struct epoll_event events[EVENTS_PER_WAIT];
    for (;;) {
        bool open = false;
        for (uint32_t i = 0; i < w->agent_count && !open; i++) open = w->agents[i].fd >= 0;
        int64_t now = clock_mono_ms();
        if (!open || now >= deadline) break;
        int n = epoll_wait(w->epfd, events, EVENTS_PER_WAIT, (int)MAMORI_MIN(deadline - now, (int64_t)SIM_TICK_MS));
        for (int i = 0; i < n; i++) {
            sim_agent *a = &w->agents[events[i].data.u64 >> 32];
            if (a->fd >= 0 && a->generation == (uint32_t)events[i].data.u64)
                conn_on_event(w, a, events[i].events, now);
        }
    }
    for (uint32_t i = 0; i < w->agent_count; i++)
        if (w->agents[i].fd >= 0) conn_drop(w, &w->agents[i], false);
}

void *worker_main(void *arg)
{
    sim_worker *w = arg;
    struct epoll_event events[EVENTS_PER_WAIT];
    w->last_tick_ms = clock_mono_ms();
    start_connections(w, w->last_tick_ms);
    while (!atomic_load_explicit(&w->run->stop, memory_order_relaxed)) {
        int64_t now = clock_mono_ms();
        int timeout = (int)MAMORI_MAX((int64_t)0, w->last_tick_ms + SIM_TICK_MS - now);
        int n = epoll_wait(w->epfd, events, EVENTS_PER_WAIT, timeout);
        if (n < 0 && errno != EINTR) {
            LOG_ERROR(MOD, "worker %u: epoll_wait: %s", w->id, strerror(errno));
            break;
        }
        now = clock_mono_ms();
        for (int i = 0; i < n; i++) {
            /* (slot, generation): an event for a connection that has since been replaced is
             * dropped, never applied to the new one. */
            uint64_t data = events[i].data.u64;
            sim_agent *a = &w->agents[data >> 32];
            if (a->fd < 0 || a->generation != (uint32_t)data) continue;
            conn_on_event(w, a, events[i].events, now);
        }
        if (now - w->last_tick_ms >= SIM_TICK_MS) {
            double dt = (double)(now - w->last_tick_ms) / 1000.0;
            w->last_tick_ms = now;
            tick(w, now, dt);
        }
    }
    shut_down(w);
    return NULL;
}
