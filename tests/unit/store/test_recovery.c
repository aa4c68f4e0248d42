/* tests/unit/store/test_recovery.c — crash safety of the index: a child process writes
 * groups, has some slices written and some not, and SIGKILLs itself; the reopened store
 * must find every event through the index exactly once, and hold exactly one posting
 * entry per (event, value) on disk — nothing lost, nothing indexed twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/internal.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "test_helpers.h"

enum { GROUPS = 20, AGENTS = 4, PER_BATCH = 50, FLUSH_AFTER = 10 };
#define TOTAL_EVENTS (GROUPS * AGENTS * PER_BATCH)
#define TERMS_PER_EVENT 3

static th_refs R;

static void write_groups(store *s, int from_group, int to_group, int flush_after)
{
    arena a;
    arena_init(&a, 1 << 16);
    json_parser *p = json_parser_create();
    char agents[AGENTS][16];
    for (int g = from_group; g < to_group; g++) {
        store_batch b[AGENTS];
        for (int ag = 0; ag < AGENTS; ag++) {
            snprintf(agents[ag], sizeof agents[ag], "agent-%d", ag);
            mamori_event *ev = arena_alloc(&a, PER_BATCH * sizeof *ev);
            for (int i = 0; i < PER_BATCH; i++) {
                char json[256];
                int n = (g * AGENTS + ag) * PER_BATCH + i;
                snprintf(json, sizeof json,
                         "{\"event\":{\"category\":[\"process\"]},\"host\":{\"id\":\"H%d\"},"
                         "\"process\":{\"entity_id\":\"E%d\"}}",
                         ag, n);
                /* a later group may carry earlier timestamps: slices overlap in time */
                int64_t ts = T_BASE_US + (int64_t)((g * 7919) % GROUPS) * 1000000 + (int64_t)(i * AGENTS + ag) * 100;
                th_event(&a, p, json, ts, (uint32_t)i, &ev[i]);
            }
            b[ag] = th_batch("acme", agents[ag], (uint64_t)g + 1, ev, PER_BATCH);
        }
        store_write_result r;
        if (store_write_group(s, b, AGENTS, &r) || r.events_written != AGENTS * PER_BATCH) abort();
        if (g + 1 == flush_after && store_flush_index(s)) abort();
        arena_reset(&a);
    }
    json_parser_destroy(p);
    arena_fini(&a);
}

/* Sum of the entry counts of every posting on disk. */
static uint64_t posting_entries_on_disk(store *s)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_INDEX]);
    uint64_t total = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        ix_cursor c;
        assert_int_equal(ix_cursor_open(&c, v, vlen, (int64_t)mamori_get_be64(k + klen - 16)), 0);
        total += c.remaining;
        ix_cursor_close(&c);
    }
    rocksdb_iter_destroy(it);
    return total;
}

static uint64_t pending_log_entries(store *s)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->read_options, s->cf[CF_STATE]);
    uint64_t n = 0;
    for (rocksdb_iter_seek(it, STORE_IXLOG_PREFIX, STORE_IXLOG_PREFIX_LEN); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < STORE_IXLOG_PREFIX_LEN || memcmp(k, STORE_IXLOG_PREFIX, STORE_IXLOG_PREFIX_LEN) != 0) break;
        n++;
    }
    rocksdb_iter_destroy(it);
    return n;
}

static void check_exactly_once(store *s)
{
    memset(&R, 0, sizeof R);
    assert_int_equal(store_index_lookup(s, "acme", STORE_IX_EVENT_CATEGORY, "process", 7, false, 0, INT64_MAX,
                                        th_collect, &R),
                     0);
    assert_int_equal(R.n, TOTAL_EVENTS);
    for (size_t i = 1; i < 4096 && i < R.n; i++) assert_true(store_ref_cmp(&R.v[i - 1], &R.v[i]) < 0);
    for (int ag = 0; ag < AGENTS; ag++) {
        char host[8];
        snprintf(host, sizeof host, "h%d", ag);
        memset(&R, 0, sizeof R);
        assert_int_equal(
            store_index_lookup(s, "acme", STORE_IX_HOST_ID, host, strlen(host), false, 0, INT64_MAX, th_collect, &R), 0);
        assert_int_equal(R.n, TOTAL_EVENTS / AGENTS);
    }
    for (int n = 0; n < TOTAL_EVENTS; n += 397) {
        char id[16];
        snprintf(id, sizeof id, "e%d", n);
        memset(&R, 0, sizeof R);
        assert_int_equal(
            store_index_lookup(s, "acme", STORE_IX_PROCESS_ENTITY_ID, id, strlen(id), false, 0, INT64_MAX, th_collect, &R),
            0);
        assert_int_equal(R.n, 1);
        assert_int_equal(R.v[0].index, (uint32_t)(n % PER_BATCH));
    }
    assert_int_equal(store_flush_index(s), 0);
    assert_int_equal(posting_entries_on_disk(s), (uint64_t)TOTAL_EVENTS * TERMS_PER_EVENT);
    assert_int_equal(pending_log_entries(s), 0);
}

static int crash_step;

static void die_at_step(int step)
{
    if (step == crash_step) kill(getpid(), SIGKILL);
}

static void crash_child(const store_options *o, int flush_after, int slice_ms, int step)
{
    store_options co = *o;
    if (slice_ms) co.index_slice_ms = (uint32_t)slice_ms;
    store *s = th_open(&co);
    write_groups(s, 0, GROUPS, flush_after);
    if (step) {
        /* die in the middle of writing the last slice */
        crash_step = step;
        ix_test_hook = die_at_step;
        if (store_flush_index(s)) _exit(4);
    }
    kill(getpid(), SIGKILL); /* no close, no flush: a crash */
    _exit(3);
}

/* The child is a fresh exec of this binary: forking a process that already ran RocksDB
 * would leave the child without RocksDB's background threads. */
static void run_crash_at(int flush_after, int slice_ms, int step)
{
    char *dir = th_tmpdir();
    store_options o;
    th_options(&o, dir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char a1[16], a2[16], a3[16];
        snprintf(a1, sizeof a1, "%d", flush_after);
        snprintf(a2, sizeof a2, "%d", slice_ms);
        snprintf(a3, sizeof a3, "%d", step);
        execl("/proc/self/exe", "test_recovery", "--crash-child", dir, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    store *s = th_open(&o);
    uint64_t n;
    assert_int_equal(store_count_events(s, "acme", 0, INT64_MAX, &n), 0);
    assert_int_equal(n, TOTAL_EVENTS);
    uint64_t seq;
    assert_int_equal(store_agent_durable_seq(s, event_tenant_hash("acme"), event_agent_hash("acme", "agent-0"), &seq), 0);
    assert_int_equal(seq, GROUPS);
    check_exactly_once(s);
    store_close(s);
    /* a second open finds nothing to replay and the index is unchanged */
    s = th_open(&o);
    check_exactly_once(s);
    store_close(s);
    th_rmdir(dir);
}

static void run_crash(int flush_after, int slice_ms) { run_crash_at(flush_after, slice_ms, 0); }

static void test_crash_with_no_slice_written(void **state)
{
    (void)state;
    run_crash(0, 0);
}

static void test_crash_with_some_slices_written(void **state)
{
    (void)state;
    run_crash(FLUSH_AFTER, 0);
}

static void test_crash_while_background_writes_slices(void **state)
{
    (void)state;
    run_crash(0, 5); /* the background thread closes a slice every 5 ms */
}

static void test_crash_after_slice_marker(void **state)
{
    (void)state;
    run_crash_at(FLUSH_AFTER, 0, 1);
}

static void test_crash_after_slice_ingested(void **state)
{
    (void)state;
    /* the postings are in, the pending-log entries too: recovery must rebuild the very
     * same keys, not add a second copy under another slice id */
    run_crash_at(FLUSH_AFTER, 0, 2);
}

static void test_clean_close_leaves_no_log(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    store_options o;
    th_options(&o, dir);
    store *s = th_open(&o);
    write_groups(s, 0, GROUPS, FLUSH_AFTER);
    assert_true(pending_log_entries(s) > 0);
    store_close(s);
    s = th_open(&o);
    assert_int_equal(pending_log_entries(s), 0);
    check_exactly_once(s);
    store_close(s);
    th_rmdir(dir);
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--crash-child") == 0) {
        store_options o;
        th_options(&o, argv[2]);
        crash_child(&o, atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_with_no_slice_written),
        cmocka_unit_test(test_crash_with_some_slices_written),
        cmocka_unit_test(test_crash_while_background_writes_slices),
        cmocka_unit_test(test_crash_after_slice_marker),
        cmocka_unit_test(test_crash_after_slice_ingested),
        cmocka_unit_test(test_clean_close_leaves_no_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
