/* Unit tests for cli/page_ahead.c: the thread that brings `mamorictl scan`'s mapped input
 * into memory ahead of the scan. A file is written, dropped from the page cache, mapped, and
 * mincore says which of its pages the thread has read in: all of a file shorter than the
 * window, and of a longer one the window after the position the scan reports, not beyond. A
 * file already in the page cache gets no thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cli/page_ahead.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)

struct mapped {
    char path[64];
    char *base;
    size_t len;
    size_t page;
    bool evicted; /* the page cache dropped the file (not on tmpfs, for one) */
};

static size_t resident_pages(const struct mapped *m, size_t from, size_t to)
{
    size_t first = from / m->page, last = (to + m->page - 1) / m->page;
    unsigned char *vec = malloc(last - first);
    assert_non_null(vec);
    assert_int_equal(mincore(m->base + first * m->page, (last - first) * m->page, vec), 0);
    size_t n = 0;
    for (size_t i = 0; i < last - first; i++) n += vec[i] & 1;
    free(vec);
    return n;
}

/* A file of len bytes, synced, dropped from the page cache, mapped. */
static void map_cold_file(struct mapped *m, size_t len)
{
    snprintf(m->path, sizeof m->path, "page_ahead_test_XXXXXX");
    int fd = mkstemp(m->path);
    assert_true(fd >= 0);
    char *block = malloc(MIB);
    assert_non_null(block);
    for (size_t i = 0; i < MIB; i++) block[i] = (char)('a' + i % 26);
    for (size_t done = 0; done < len; done += MIB)
        assert_int_equal(write(fd, block, MIB), (ssize_t)MIB);
    free(block);
    assert_int_equal(fsync(fd), 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    m->len = len;
    m->page = (size_t)sysconf(_SC_PAGESIZE);
    m->base = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    assert_true(m->base != MAP_FAILED);
    close(fd);
    unlink(m->path); /* the mapping keeps it; nothing is left behind if a test fails */
    m->evicted = resident_pages(m, 0, len) < len / m->page / 2;
}

static void unmap_file(struct mapped *m)
{
    munmap(m->base, m->len);
}

/* Waits (up to 20 s) until every page of [from, to) is resident. */
static bool wait_resident(const struct mapped *m, size_t from, size_t to)
{
    size_t want = (to - from + m->page - 1) / m->page;
    for (int i = 0; i < 2000; i++) {
        if (resident_pages(m, from, to) == want) return true;
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    return false;
}

static void test_reads_a_short_file_whole(void **state)
{
    (void)state;
    struct mapped m;
    map_cold_file(&m, 8 * MIB);
    if (!m.evicted) { /* a file system that keeps every page (tmpfs): nothing to read */
        assert_null(page_ahead_start(m.base, m.len, PAGE_AHEAD_WINDOW));
        unmap_file(&m);
        skip();
    }
    page_ahead *r = page_ahead_start(m.base, m.len, PAGE_AHEAD_WINDOW);
    assert_non_null(r);
    assert_true(wait_resident(&m, 0, m.len));
    double cpu = page_ahead_stop(r);
    assert_true(cpu >= 0 && cpu < 60);
    /* the bytes are the file's: reading ahead changes nothing the scan sees */
    for (size_t i = 0; i < m.len; i += 4099) assert_int_equal(m.base[i], 'a' + (i % MIB) % 26);
    unmap_file(&m);
}

static void test_keeps_to_its_window(void **state)
{
    (void)state;
    struct mapped m;
    map_cold_file(&m, 32 * MIB);
    if (!m.evicted) { /* a file system that keeps every page: nothing to observe */
        unmap_file(&m);
        skip();
    }
    /* no read-ahead of the kernel's around a fault (8 MiB on some disks): only what the
     * thread reads comes in */
    assert_int_equal(madvise(m.base, m.len, MADV_RANDOM), 0);
    page_ahead *r = page_ahead_start(m.base, m.len, 4 * MIB);
    assert_non_null(r);
    assert_true(wait_resident(&m, 0, 4 * MIB));
    /* then it waits for the scan: nothing more comes in (the next chunk may have been under
     * way, the thread reads 2 MiB per step), and nothing beyond it */
    struct timespec settle = {0, 250 * 1000 * 1000};
    nanosleep(&settle, NULL);
    size_t held = resident_pages(&m, 0, m.len);
    nanosleep(&settle, NULL);
    assert_int_equal(resident_pages(&m, 0, m.len), held);
    assert_int_equal(resident_pages(&m, 8 * MIB, m.len), 0);
    page_ahead_advance(r, 24 * MIB); /* the scan has come this far: the window follows it */
    assert_true(wait_resident(&m, 24 * MIB, 28 * MIB));
    page_ahead_advance(r, m.len - MIB); /* near the end: the window is cut at the file's end */
    assert_true(wait_resident(&m, m.len - MIB, m.len));
    page_ahead_stop(r);
    unmap_file(&m);
}

/* A file the page cache holds is left to the scan: no thread. */
static void test_leaves_a_held_file_alone(void **state)
{
    (void)state;
    struct mapped m;
    map_cold_file(&m, 4 * MIB);
    unsigned sum = 0;
    for (size_t i = 0; i < m.len; i += m.page) sum += (unsigned char)m.base[i]; /* read it all in */
    assert_true(sum > 0);
    assert_null(page_ahead_start(m.base, m.len, PAGE_AHEAD_WINDOW));
    unmap_file(&m);
}

static void test_stops_at_once_and_accepts_null(void **state)
{
    (void)state;
    struct mapped m;
    map_cold_file(&m, 4 * MIB);
    page_ahead *r = page_ahead_start(m.base, m.len, m.page); /* a window of one page */
    if (m.evicted) assert_non_null(r);
    assert_true(page_ahead_stop(r) >= 0); /* joins without waiting for the scan */
    page_ahead_advance(NULL, 0);
    assert_true(page_ahead_stop(NULL) == 0);
    unmap_file(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_a_short_file_whole),
        cmocka_unit_test(test_keeps_to_its_window),
        cmocka_unit_test(test_leaves_a_held_file_alone),
        cmocka_unit_test(test_stops_at_once_and_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
