/* tests/unit/store/test_retention.c — retention removes whole day buckets (events and
 * index) older than each tenant's retention, keeps the recent ones, honours per-tenant
 * overrides, and removes millions of events in one range delete without touching them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/clock.h"
#include "store/store.h"

#include <errno.h>

#include "test_helpers.h"

static th_refs R;
#define NOW_US (T_BASE_US + 100 * T_DAY_US + T_DAY_US / 2)

static void write_days(store *s, arena *a, json_parser *p, const char *tenant, const int *days_ago, int n,
                       uint64_t seq)
{
    mamori_event *ev = arena_alloc(a, (size_t)n * sizeof *ev);
    for (int i = 0; i < n; i++)
        th_event(a, p, "{\"host\":{\"id\":\"H\"},\"event\":{\"category\":\"process\"}}", NOW_US - days_ago[i] * T_DAY_US,
                 (uint32_t)i, &ev[i]);
    store_batch b = th_batch(tenant, "agent", seq, ev, (uint32_t)n);
    store_write_result r;
    assert_int_equal(store_write_group(s, &b, 1, &r), 0);
    assert_int_equal(r.events_written, (uint64_t)n);
}

static size_t count(store *s, const char *tenant)
{
    uint64_t n;
    assert_int_equal(store_count_events(s, tenant, 0, INT64_MAX, &n), 0);
    return (size_t)n;
}

static size_t indexed(store *s, const char *tenant)
{
    memset(&R, 0, sizeof R);
    assert_int_equal(store_index_lookup(s, tenant, STORE_IX_HOST_ID, "h", 1, false, 0, INT64_MAX, th_collect, &R), 0);
    return R.n;
}

static void test_old_days_go_recent_stay(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    store_options o;
    th_options(&o, dir);
    o.retention_days = 30;
    store *s = th_open(&o);
    arena a;
    arena_init(&a, 1 << 16);
    json_parser *p = json_parser_create();
    static const int days[] = {40, 31, 30, 29, 1, 0};
    write_days(s, &a, p, "acme", days, 6, 1);
    assert_int_equal(store_flush_index(s), 0);
    write_days(s, &a, p, "acme", days, 6, 2); /* the second copy stays in the memory slice */
    assert_int_equal(count(s, "acme"), 12);
    assert_int_equal(indexed(s, "acme"), 12);

    uint32_t ranges;
    assert_int_equal(store_apply_retention(s, NOW_US, &ranges), 0);
    assert_int_equal(ranges, 1);
    assert_int_equal(count(s, "acme"), 8); /* 30, 29, 1, 0 days ago, twice */
    uint64_t n;
    int64_t cutoff_us = (clock_day_of_us(NOW_US) - 30) * T_DAY_US;
    assert_int_equal(store_count_events(s, "acme", 0, cutoff_us, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_count_events(s, "acme", cutoff_us, INT64_MAX, &n), 0);
    assert_int_equal(n, 8);
    /* the index forgets them too: on disk, in memory, and after the slice is written */
    assert_int_equal(indexed(s, "acme"), 8);
    for (size_t i = 0; i < R.n; i++) assert_true(R.v[i].ts_us >= cutoff_us);
    assert_int_equal(store_flush_index(s), 0);
    assert_int_equal(indexed(s, "acme"), 8);
    /* nothing left to delete: no new range */
    assert_int_equal(store_apply_retention(s, NOW_US, &ranges), 0);
    assert_int_equal(ranges, 0);
    store_close(s);
    s = th_open(&o);
    assert_int_equal(count(s, "acme"), 8);
    assert_int_equal(indexed(s, "acme"), 8);
    store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.retention_ranges_deleted, 0); /* counters are since open */
    store_close(s);
    json_parser_destroy(p);
    arena_fini(&a);
    th_rmdir(dir);
}

static void test_per_tenant_overrides(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    store_options o;
    th_options(&o, dir);
    o.retention_days = 30;
    store_tenant_retention over[] = {{.tenant = "short", .days = 7}, {.tenant = "forever", .days = 0}};
    o.tenant_retention = over;
    o.tenant_retention_count = 2;
    store *s = th_open(&o);
    arena a;
    arena_init(&a, 1 << 16);
    json_parser *p = json_parser_create();
    static const int days[] = {400, 31, 8, 6, 0};
    write_days(s, &a, p, "default", days, 5, 1);
    write_days(s, &a, p, "short", days, 5, 1);
    write_days(s, &a, p, "forever", days, 5, 1);
    uint32_t ranges;
    assert_int_equal(store_apply_retention(s, NOW_US, &ranges), 0);
    assert_int_equal(ranges, 2);
    assert_int_equal(count(s, "default"), 3);
    assert_int_equal(count(s, "short"), 2);
    assert_int_equal(count(s, "forever"), 5);
    assert_int_equal(indexed(s, "default"), 3);
    assert_int_equal(indexed(s, "short"), 2);
    assert_int_equal(indexed(s, "forever"), 5);
    buf v;
    buf_init(&v);
    assert_int_equal(store_meta_get(s, "tenant/short", &v), 0);
    assert_non_null(strstr(buf_cstr(&v), "\"retention_days\":7"));
    buf_fini(&v);
    store_close(s);
    json_parser_destroy(p);
    arena_fini(&a);
    th_rmdir(dir);
}

static void test_millions_of_keys_removed_at_once(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    store_options o;
    th_options(&o, dir);
    o.retention_days = 3;
    o.write_buffer_bytes = 64u << 20;
    store *s = th_open(&o);
    enum { EVENTS = 2000000, PER_BATCH = 5000, DAYS = 10 };
    mamori_event *ev = calloc(PER_BATCH, sizeof *ev);
    uint64_t seq = 1;
    for (int done = 0; done < EVENTS; done += PER_BATCH, seq++) {
        int64_t day0 = NOW_US - (int64_t)(DAYS - 1 - (done * DAYS / EVENTS)) * T_DAY_US;
        for (int i = 0; i < PER_BATCH; i++)
            ev[i] = (mamori_event){.ts_us = day0 - (int64_t)i * 1000, .index = (uint32_t)i, .json = "{}", .json_len = 2};
        store_batch b = th_batch("bulk", "agent", seq, ev, PER_BATCH);
        store_write_result r;
        assert_int_equal(store_write_group(s, &b, 1, &r), 0);
    }
    free(ev);
    assert_int_equal(count(s, "bulk"), EVENTS);
    int64_t t0 = clock_mono_us();
    uint32_t ranges;
    assert_int_equal(store_apply_retention(s, NOW_US, &ranges), 0);
    int64_t took_us = clock_mono_us() - t0;
    print_message("retention removed %d of %d events in %.1f ms\n", EVENTS - (int)count(s, "bulk"), EVENTS,
                  (double)took_us / 1000.0);
    assert_int_equal(ranges, 1);
    assert_int_equal(count(s, "bulk"), EVENTS / DAYS * 4); /* days 0..3 ago stay */
    assert_true(took_us < 1000000);
    store_close(s);
    th_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_days_go_recent_stay),
        cmocka_unit_test(test_per_tenant_overrides),
        cmocka_unit_test(test_millions_of_keys_removed_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
