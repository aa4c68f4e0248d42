/* cli/page_ahead.c — see page_ahead.h. */
#include "page_ahead.h"

#include "core/base.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

/* How much is read in per step (between looks at the scan's position and the stop flag),
 * and the nap when the window is full. */
#define PAGE_AHEAD_CHUNK ((size_t)2 << 20)
#define PAGE_AHEAD_NAP_NS 1000000L

struct page_ahead {
    const char *base;
    size_t len;
    size_t page;
    size_t window;
    atomic_size_t consumer; /* the scan's offset */
    atomic_bool stop;
    double cpu_s; /* written by the thread before it returns, read after the join */
    pthread_t thread;
};

/* Brings [p, p + n) in: one read per page, each a fault that maps the page (and its
 * neighbours) and reads it from disk when the page cache does not hold it. Not
 * MADV_POPULATE_READ: on a file the page cache did not hold, it left most of the disk's cost
 * on the scan thread (the whole OTRF file: 4.4–5.8 s instead of 2.9–3.5 s,
 * docs/detection.md §10.16). */
static void populate(const page_ahead *r, const char *p, size_t n)
{
    unsigned char sum = 0;
    for (size_t i = 0; i < n; i += r->page) sum ^= *(const volatile unsigned char *)(p + i);
    (void)sum;
}

static void *page_ahead_main(void *arg)
{
    page_ahead *r = arg;
    size_t done = 0; /* [0, done) read in or passed by the scan; a multiple of the page size */
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed) && done < r->len) {
        size_t pos = atomic_load_explicit(&r->consumer, memory_order_relaxed);
        if (done < pos) done = pos - pos % r->page; /* the scan overtook: what it passed is in */
        size_t target = r->len - pos > r->window ? pos + r->window : r->len;
        if (done >= target) {
            struct timespec nap = {0, PAGE_AHEAD_NAP_NS};
            nanosleep(&nap, NULL);
            continue;
        }
        /* whole pages: the last may pass len, not the mapping */
        size_t end = MAMORI_MIN(done + PAGE_AHEAD_CHUNK, target);
        end = (end + r->page - 1) / r->page * r->page;
        populate(r, r->base + done, end - done);
        done = end;
    }
    r->cpu_s = (double)clock_thread_cpu_us() / 1e6;
    return NULL;
}

/* Whether the page cache holds at least 9 in 10 of the pages of [base, base + len): then
 * the scan's own faults are cheaper than a thread reading ahead (docs/detection.md §10.16). */
static bool mostly_held(const char *base, size_t len, size_t page)
{
    size_t pages = (len + page - 1) / page;
    unsigned char *held = malloc(pages);
    if (!held) return false;
    size_t count = 0;
    if (mincore((void *)(uintptr_t)base, len, held) == 0)
        for (size_t i = 0; i < pages; i++) count += held[i] & 1;
    free(held);
    return count >= pages - pages / 10;
}

page_ahead *page_ahead_start(const char *base, size_t len, size_t window)
{
    long sys_page = sysconf(_SC_PAGESIZE);
    size_t page = sys_page > 0 ? (size_t)sys_page : 4096;
    if (mostly_held(base, len, page)) return NULL;
    page_ahead *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->base = base;
    r->len = len;
    r->page = page;
    r->window = window < r->page ? r->page : window;
    atomic_init(&r->consumer, 0);
    atomic_init(&r->stop, false);
    if (pthread_create(&r->thread, NULL, page_ahead_main, r) != 0) {
        free(r);
        return NULL;
    }
    pthread_setname_np(r->thread, "scan-ahead");
    return r;
}

void page_ahead_advance(page_ahead *r, size_t pos)
{
    if (r) atomic_store_explicit(&r->consumer, pos, memory_order_relaxed);
}

double page_ahead_stop(page_ahead *r)
{
    if (!r) return 0;
    atomic_store_explicit(&r->stop, true, memory_order_relaxed);
    pthread_join(r->thread, NULL);
    double cpu = r->cpu_s;
    free(r);
    return cpu;
}
