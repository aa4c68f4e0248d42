/* tests/unit/store/test_write.c — group commits: every event stored once under its key,
 * duplicates (seq <= durable) skipped, durable seqs surviving close/reopen, scans and
 * counts by time range, metadata, stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/store.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>

#include "test_helpers.h"

typedef struct fixture {
    char *dir;
    store_options opt;
    store *s;
    arena a;
    json_parser *p;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = th_tmpdir();
    th_options(&f->opt, f->dir);
    f->s = th_open(&f->opt);
    arena_init(&f->a, 1 << 16);
    f->p = json_parser_create();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    th_rmdir(f->dir);
    arena_fini(&f->a);
    json_parser_destroy(f->p);
    free(f);
    return 0;
}

/* n events of one agent batch, ts = base + i ms */
static mamori_event *make_events(fixture *f, uint32_t n, int64_t base)
{
    mamori_event *ev = arena_alloc(&f->a, n * sizeof *ev);
    for (uint32_t i = 0; i < n; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"event\":{\"category\":[\"process\"]},\"host\":{\"id\":\"h1\"},\"n\":%u}", i);
        th_event(&f->a, f->p, json, base + (int64_t)i * 1000, i, &ev[i]);
    }
    return ev;
}

static void test_group_commit_stores_each_event_once(void **state)
{
    fixture *f = *state;
    mamori_event *e1 = make_events(f, 10, T_BASE_US);
    mamori_event *e2 = make_events(f, 5, T_BASE_US + 500);
    store_batch b[3] = {
        th_batch("acme", "host-1", 1, e1, 10),
        th_batch("acme", "host-2", 1, e2, 5),
        th_batch("other", "host-1", 7, e1, 3),
    };
    store_write_result r;
    assert_int_equal(store_write_group(f->s, b, 3, &r), 0);
    assert_int_equal(r.batches_written, 3);
    assert_int_equal(r.batches_duplicate, 0);
    assert_int_equal(r.events_written, 18);
    assert_true(r.bytes_written > 18 * 40);

    uint64_t n;
    assert_int_equal(store_count_events(f->s, "acme", 0, INT64_MAX, &n), 0);
    assert_int_equal(n, 15);
    assert_int_equal(store_count_events(f->s, "other", 0, INT64_MAX, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(store_count_events(f->s, NULL, 0, INT64_MAX, &n), 0);
    assert_int_equal(n, 18);
    assert_int_equal(store_count_events(f->s, "nobody", 0, INT64_MAX, &n), 0);
    assert_int_equal(n, 0);
    /* [from, to) */
    assert_int_equal(store_count_events(f->s, "acme", T_BASE_US + 1000, T_BASE_US + 3000, &n), 0);
    assert_int_equal(n, 4); /* host-1 at +1000, +2000; host-2 at +1500, +2500 */
}

static void test_get_event_by_address(void **state)
{
    fixture *f = *state;
    mamori_event *e = make_events(f, 3, T_BASE_US);
    store_batch b = th_batch("acme", "host-1", 42, e, 3);
    store_write_result r;
    assert_int_equal(store_write_group(f->s, &b, 1, &r), 0);
    buf json;
    buf_init(&json);
    assert_int_equal(store_get_event(f->s, b.tenant_hash, e[2].ts_us, b.agent_hash, 42, 2, &json), 0);
    assert_int_equal(json.len, e[2].json_len);
    assert_memory_equal(json.data, e[2].json, json.len);
    assert_int_equal(store_get_event(f->s, b.tenant_hash, e[2].ts_us, b.agent_hash, 42, 3, &json), -ENOENT);
    assert_int_equal(store_get_event(f->s, event_tenant_hash("other"), e[2].ts_us, b.agent_hash, 42, 2, &json),
                     -ENOENT);
    buf_fini(&json);
}

static void test_duplicates_skipped(void **state)
{
    fixture *f = *state;
    mamori_event *e = make_events(f, 4, T_BASE_US);
    store_batch b[2] = {th_batch("acme", "host-1", 5, e, 4), th_batch("acme", "host-1", 6, e + 2, 2)};
    store_write_result r;
    assert_int_equal(store_write_group(f->s, b, 2, &r), 0);
    assert_int_equal(r.batches_written, 2);
    uint64_t seq;
    assert_int_equal(store_agent_durable_seq(f->s, b[0].tenant_hash, b[0].agent_hash, &seq), 0);
    assert_int_equal(seq, 6);

    /* re-delivery of 5 and 6, plus a new 7 and, inside the same group, 7 again */
    store_batch again[4] = {b[0], b[1], th_batch("acme", "host-1", 7, e, 1), th_batch("acme", "host-1", 7, e, 1)};
    assert_int_equal(store_write_group(f->s, again, 4, &r), 0);
    assert_int_equal(r.batches_written, 1);
    assert_int_equal(r.batches_duplicate, 3);
    assert_int_equal(r.events_written, 1);
    /* all duplicates: nothing written, still success */
    assert_int_equal(store_write_group(f->s, again, 2, &r), 0);
    assert_int_equal(r.batches_written, 0);
    assert_int_equal(r.batches_duplicate, 2);

    uint64_t n;
    assert_int_equal(store_count_events(f->s, "acme", 0, INT64_MAX, &n), 0);
    assert_int_equal(n, 4 + 2 + 1);
    /* another agent of the same tenant is independent */
    assert_int_equal(store_agent_durable_seq(f->s, b[0].tenant_hash, event_agent_hash("acme", "host-2"), &seq), 0);
    assert_int_equal(seq, 0);

    store_stats st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.batches_written, 3);
    assert_int_equal(st.batches_duplicate, 5);
    assert_int_equal(st.events_written, 7);
    assert_int_equal(st.group_commits, 2);
}

static void test_durable_seq_survives_reopen(void **state)
{
    fixture *f = *state;
    mamori_event *e = make_events(f, 2, T_BASE_US);
    store_batch b[2] = {th_batch("acme", "host-1", 100, e, 2), th_batch("acme", "host-9", 3, e, 2)};
    store_write_result r;
    assert_int_equal(store_write_group(f->s, b, 2, &r), 0);
    store_close(f->s);
    f->s = th_open(&f->opt);
    uint64_t seq;
    assert_int_equal(store_agent_durable_seq(f->s, b[0].tenant_hash, b[0].agent_hash, &seq), 0);
    assert_int_equal(seq, 100);
    assert_int_equal(store_agent_durable_seq(f->s, b[1].tenant_hash, b[1].agent_hash, &seq), 0);
    assert_int_equal(seq, 3);
    /* a resend after the restart is recognised */
    assert_int_equal(store_write_group(f->s, b, 2, &r), 0);
    assert_int_equal(r.batches_duplicate, 2);
    uint64_t n;
    assert_int_equal(store_count_events(f->s, NULL, 0, INT64_MAX, &n), 0);
    assert_int_equal(n, 4);
}

typedef struct scan_state {
    store_event_ref refs[64];
    size_t n;
    size_t stop_at;
} scan_state;

static int scan_fn(void *ctx, const store_event_ref *ref, const char *json, size_t len)
{
    scan_state *s = ctx;
    assert_true(len > 0 && json[0] == '{');
    s->refs[s->n++] = *ref;
    return s->stop_at && s->n >= s->stop_at;
}

static void test_scan_in_time_order_across_days(void **state)
{
    fixture *f = *state;
    /* two agents, events straddling a day boundary, written out of time order */
    mamori_event *e = arena_alloc(&f->a, 6 * sizeof *e);
    int64_t ts[6] = {T_BASE_US + T_DAY_US + 5, T_BASE_US + 10, T_BASE_US + T_DAY_US - 1,
                     T_BASE_US + 2 * T_DAY_US, T_BASE_US + 3, T_BASE_US + T_DAY_US};
    for (uint32_t i = 0; i < 6; i++) th_event(&f->a, f->p, "{\"a\":1}", ts[i], i, &e[i]);
    store_batch b[2] = {th_batch("acme", "h1", 1, e, 3), th_batch("acme", "h2", 1, e + 3, 3)};
    store_write_result r;
    assert_int_equal(store_write_group(f->s, b, 2, &r), 0);
    scan_state st = {0};
    assert_int_equal(store_scan_events(f->s, "acme", 0, INT64_MAX, scan_fn, &st), 0);
    assert_int_equal(st.n, 6);
    for (size_t i = 1; i < st.n; i++) assert_true(st.refs[i - 1].ts_us < st.refs[i].ts_us);
    memset(&st, 0, sizeof st);
    assert_int_equal(store_scan_events(f->s, "acme", T_BASE_US + 10, T_BASE_US + T_DAY_US + 5, scan_fn, &st), 0);
    assert_int_equal(st.n, 3); /* +10, day-1, day */
    memset(&st, 0, sizeof st);
    st.stop_at = 2;
    assert_int_equal(store_scan_events(f->s, "acme", 0, INT64_MAX, scan_fn, &st), 0);
    assert_int_equal(st.n, 2);
}

static void test_meta_and_stats(void **state)
{
    fixture *f = *state;
    buf v;
    buf_init(&v);
    assert_int_equal(store_meta_get(f->s, "apikey/abc", &v), -ENOENT);
    assert_int_equal(store_meta_put(f->s, "apikey/abc", "{\"role\":\"admin\"}", 16), 0);
    assert_int_equal(store_meta_get(f->s, "apikey/abc", &v), 0);
    assert_int_equal(v.len, 16);
    assert_memory_equal(v.data, "{\"role\":\"admin\"}", 16);
    assert_int_equal(store_meta_put(f->s, "empty", "", 0), 0);
    assert_int_equal(store_meta_get(f->s, "empty", &v), 0);
    assert_int_equal(v.len, 0);
    /* the tenant registry lives in meta too */
    mamori_event *e = make_events(f, 100, T_BASE_US);
    store_batch b = th_batch("acme", "host-1", 1, e, 100);
    store_write_result r;
    assert_int_equal(store_write_group(f->s, &b, 1, &r), 0);
    assert_int_equal(store_meta_get(f->s, "tenant/acme", &v), 0);
    assert_non_null(strstr(buf_cstr(&v), "\"name\":\"acme\""));

    assert_int_equal(store_compact_all(f->s), 0);
    store_stats st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.events_written, 100);
    assert_true(st.events_sst_bytes > 0);
    assert_true(st.index_sst_bytes > 0);
    assert_true(st.total_sst_bytes >= st.events_sst_bytes + st.index_sst_bytes);
    assert_int_equal(st.estimated_events, 100);
    assert_int_equal(st.index_entries_pending, 0);
    assert_int_equal(st.index_slices_flushed, 1);
    buf_fini(&v);
}

/* A write RocksDB cannot complete (here: the file size limit, as a full disk would) is an
 * error code for the caller to retry, never an abort; nothing of the group is reported
 * written. */
static void test_write_failure_returns_an_error(void **state)
{
    fixture *f = *state;
    mamori_event *e = make_events(f, 50, T_BASE_US);
    store_batch b = th_batch("acme", "host-1", 1, e, 50);
    store_write_result r;
    assert_int_equal(store_write_group(f->s, &b, 1, &r), 0);

    struct rlimit old, tiny;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    tiny = old;
    tiny.rlim_cur = 4096; /* every file append past 4 KiB fails with EFBIG */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
    char big[8192];
    memset(big, 'x', sizeof big);
    big[0] = '"';
    big[sizeof big - 1] = '"';
    mamori_event ev = {.ts_us = T_BASE_US, .index = 0, .json = big, .json_len = sizeof big};
    store_batch fb = th_batch("acme", "host-2", 1, &ev, 1);
    int rc = store_write_group(f->s, &fb, 1, &r);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_true(rc < 0);
    assert_int_equal(r.batches_written, 0);
    uint64_t seq;
    assert_int_equal(store_agent_durable_seq(f->s, fb.tenant_hash, fb.agent_hash, &seq), 0);
    assert_int_equal(seq, 0); /* not durable, so not acknowledged */
    /* RocksDB stays read-only after a failed WAL write: later groups fail too, cleanly */
    assert_true(store_write_group(f->s, &fb, 1, &r) < 0);
    /* a restart clears it and the retried batch goes in */
    store_close(f->s);
    f->s = th_open(&f->opt);
    assert_int_equal(store_write_group(f->s, &fb, 1, &r), 0);
    assert_int_equal(r.batches_written, 1);
    buf json;
    buf_init(&json);
    assert_int_equal(store_get_event(f->s, fb.tenant_hash, ev.ts_us, fb.agent_hash, 1, 0, &json), 0);
    assert_int_equal(json.len, sizeof big);
    buf_fini(&json);
}

static void test_reopen_rejects_bad_options(void **state)
{
    (void)state;
    store_options o;
    store_options_default(&o);
    store *s = NULL;
    char err[128];
    o.path = "";
    assert_int_equal(store_open(&o, &s, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "path"));
    o.path = "/proc/definitely/not/here";
    assert_true(store_open(&o, &s, err, sizeof err) < 0);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_commit_stores_each_event_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_event_by_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_seq_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_in_time_order_across_days, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_returns_an_error, setup, teardown),
        cmocka_unit_test(test_reopen_rejects_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
