/* tests/unit/store/test_alerts.c — the alerts column family: deterministic ids, index keys
 * that sort newest first, commits that never duplicate or reset an alert, listing with every
 * filter and cursor paging (also under the examined-entries bound), updates that move the
 * status index, tenant isolation, and the detection watermarks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/store.h"

#include <errno.h>

#include "test_helpers.h"

typedef struct fixture {
    char *dir;
    store_options opt;
    store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = th_tmpdir();
    th_options(&f->opt, f->dir);
    f->s = th_open(&f->opt);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    th_rmdir(f->dir);
    free(f);
    return 0;
}

#define TENANT "acme"
#define N_ALERTS 60u

static const char *const hosts[] = {"WS-1", "ws-2", "srv-db"};
static const char *const rules[] = {"rule-a", "rule-b", "rule-c", "rule-d"};

/* Alert i: ts = base - i s (so i = 0 is the newest), level 1..5, host/rule/status cycling. */
static store_alert make_alert(uint32_t i, const char *tenant, char *body, size_t body_cap)
{
    store_alert a = {0};
    a.tenant = tenant;
    a.tenant_hash = event_tenant_hash(tenant);
    char rid[16];
    snprintf(rid, sizeof rid, "r%u", i);
    store_alert_id(a.id, a.tenant_hash, 7, 100 + i / 4, i % 4, rid, strlen(rid));
    a.ts_us = T_BASE_US - (int64_t)(i / 2) * 1000000; /* pairs share a ts: id order decides */
    a.created_us = a.updated_us = T_BASE_US + 5;
    a.level = (uint8_t)(1 + i % 5);
    a.status = (uint8_t)(i % 7 == 0 ? STORE_ALERT_CLOSED : STORE_ALERT_NEW);
    a.rule_hash = store_alert_term_hash(rules[i % 4], strlen(rules[i % 4]));
    a.host_id_hash = store_alert_term_hash("agent-7", 7);
    a.host_name_hash = store_alert_term_hash(hosts[i % 3], strlen(hosts[i % 3]));
    a.assignee = "";
    snprintf(body, body_cap, "{\"n\":%u,\"rule\":\"%s\"}", i, rules[i % 4]);
    a.body = body;
    a.body_len = (uint32_t)strlen(body);
    return a;
}

static void commit_all(store *s, const char *tenant, uint32_t n)
{
    static char bodies[N_ALERTS][64];
    store_alert a[N_ALERTS];
    bool written[N_ALERTS];
    uint32_t count = 0;
    for (uint32_t i = 0; i < n; i++) a[i] = make_alert(i, tenant, bodies[i], sizeof bodies[i]);
    assert_int_equal(store_alerts_commit(s, a, n, NULL, 0, written, &count), 0);
    assert_int_equal(count, n);
    for (uint32_t i = 0; i < n; i++) assert_true(written[i]);
}

typedef struct collected {
    uint32_t n[N_ALERTS * 2];
    uint32_t count;
} collected;

static int collect(void *ctx, const store_alert *a)
{
    collected *c = ctx;
    unsigned n = 0;
    assert_int_equal(sscanf(a->body, "{\"n\":%u", &n), 1);
    c->n[c->count++] = n;
    return 0;
}

static store_alert_query query(const char *tenant)
{
    return (store_alert_query){.tenant_hash = event_tenant_hash(tenant), .from_us = INT64_MIN, .to_us = INT64_MAX,
                               .level = -1, .status = -1, .limit = 1000};
}

/* Expected listing order of the alerts satisfying pred: ts descending, then id ascending. */
static uint32_t expected(bool (*pred)(uint32_t i, const void *arg), const void *arg, uint32_t out[N_ALERTS])
{
    char body[64];
    store_alert a[N_ALERTS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < N_ALERTS; i++) {
        if (!pred(i, arg)) continue;
        a[n] = make_alert(i, TENANT, body, sizeof body);
        out[n++] = i;
    }
    for (uint32_t x = 1; x < n; x++) /* insertion sort by (ts desc, id asc) */
        for (uint32_t y = x; y > 0; y--) {
            bool swap = a[y].ts_us > a[y - 1].ts_us ||
                        (a[y].ts_us == a[y - 1].ts_us && memcmp(a[y].id, a[y - 1].id, STORE_ALERT_ID_BYTES) < 0);
            if (!swap) break;
            store_alert t = a[y];
            a[y] = a[y - 1];
            a[y - 1] = t;
            uint32_t u = out[y];
            out[y] = out[y - 1];
            out[y - 1] = u;
        }
    return n;
}

static bool all(uint32_t i, const void *arg) { (void)i, (void)arg; return true; }
static bool by_level(uint32_t i, const void *arg) { return 1 + i % 5 == *(const uint32_t *)arg; }
static bool by_rule(uint32_t i, const void *arg) { return i % 4 == *(const uint32_t *)arg; }
static bool by_host(uint32_t i, const void *arg) { return i % 3 == *(const uint32_t *)arg; }
static bool by_closed(uint32_t i, const void *arg) { (void)arg; return i % 7 == 0; }
static bool by_rule_and_level(uint32_t i, const void *arg)
{
    const uint32_t *v = arg;
    return i % 4 == v[0] && 1 + i % 5 == v[1];
}

static void assert_listing(store *s, const store_alert_query *q0, bool (*pred)(uint32_t, const void *),
                           const void *arg)
{
    uint32_t want[N_ALERTS];
    uint32_t n = expected(pred, arg, want);
    /* one page */
    collected c = {0};
    store_alert_page page;
    assert_int_equal(store_alerts_list(s, q0, collect, &c, &page), 0);
    assert_int_equal(c.count, n);
    assert_false(page.more);
    for (uint32_t i = 0; i < n; i++) assert_int_equal(c.n[i], want[i]);
    /* pages of 7, and pages under a bound of 5 entries examined: the same list */
    for (int mode = 0; mode < 2; mode++) {
        store_alert_query q = *q0;
        q.limit = mode ? 1000 : 7;
        q.max_examined = mode ? 5 : 0;
        collected all_pages = {0};
        for (int pages = 0;; pages++) {
            assert_true(pages < 200);
            collected one = {0};
            assert_int_equal(store_alerts_list(s, &q, collect, &one, &page), 0);
            assert_true(one.count <= q.limit);
            memcpy(all_pages.n + all_pages.count, one.n, one.count * sizeof one.n[0]);
            all_pages.count += one.count;
            if (!page.more) break;
            q.after = true;
            q.after_ts_us = page.next_ts_us;
            memcpy(q.after_id, page.next_id, STORE_ALERT_ID_BYTES);
        }
        assert_int_equal(all_pages.count, n);
        for (uint32_t i = 0; i < n; i++) assert_int_equal(all_pages.n[i], want[i]);
    }
}

static void test_ids_and_terms(void **state)
{
    (void)state;
    uint8_t a[16], b[16], c[16], d[16];
    store_alert_id(a, 1, 2, 3, 4, "rule", 4);
    store_alert_id(b, 1, 2, 3, 4, "rule", 4);
    store_alert_id(c, 1, 2, 3, 5, "rule", 4);
    store_alert_id(d, 1, 2, 3, 4, "rulf", 4);
    assert_memory_equal(a, b, 16);
    assert_memory_not_equal(a, c, 16);
    assert_memory_not_equal(a, d, 16);
    char hex[STORE_ALERT_ID_HEX_CHARS + 1];
    store_alert_id_format(a, hex);
    assert_int_equal(strlen(hex), 32);
    uint8_t back[16];
    assert_int_equal(store_alert_id_parse(hex, 32, back), 0);
    assert_memory_equal(a, back, 16);
    assert_int_equal(store_alert_id_parse(hex, 31, back), -EINVAL);
    hex[5] = 'g';
    assert_int_equal(store_alert_id_parse(hex, 32, back), -EINVAL);
    assert_int_equal(store_alert_term_hash("WS-1", 4), store_alert_term_hash("ws-1", 4));
    assert_int_not_equal(store_alert_term_hash("ws-1", 4), store_alert_term_hash("ws-2", 4));
    assert_int_not_equal(store_alert_term_hash("", 0), 0);
    enum store_alert_status st;
    assert_int_equal(store_alert_status_parse("acknowledged", 12, &st), 0);
    assert_int_equal(st, STORE_ALERT_ACKNOWLEDGED);
    assert_int_equal(store_alert_status_parse("open", 4, &st), -EINVAL);
    assert_string_equal(store_alert_status_name(STORE_ALERT_CLOSED), "closed");
}

static void test_index_keys_sort_newest_first(void **state)
{
    (void)state;
    uint8_t id1[16] = {1}, id2[16] = {2};
    uint8_t k_new[STORE_ALERT_INDEX_KEY_MAX], k_old[STORE_ALERT_INDEX_KEY_MAX], k_same[STORE_ALERT_INDEX_KEY_MAX];
    uint8_t k_neg[STORE_ALERT_INDEX_KEY_MAX];
    size_t n1 = store_alert_index_key(k_new, 'T', 9, 0, 2000, id1);
    size_t n2 = store_alert_index_key(k_old, 'T', 9, 0, 1000, id1);
    size_t n3 = store_alert_index_key(k_same, 'T', 9, 0, 2000, id2);
    size_t n4 = store_alert_index_key(k_neg, 'T', 9, 0, -5, id1);
    assert_int_equal(n1, 1 + 8 + 8 + 16);
    assert_int_equal(n1, n2);
    assert_int_equal(n1, n3);
    assert_int_equal(n1, n4);
    assert_true(memcmp(k_new, k_old, n1) < 0);  /* newer first */
    assert_true(memcmp(k_new, k_same, n1) < 0); /* same time: id order */
    assert_true(memcmp(k_old, k_neg, n1) < 0);  /* times before 1970 still sort */
    assert_int_equal(store_alert_index_key(k_new, 'H', 9, 77, 0, id1), 1 + 8 + 8 + 8 + 16);
    assert_int_equal(store_alert_index_key(k_new, 'R', 9, 77, 0, id1), STORE_ALERT_INDEX_KEY_MAX);
    assert_int_equal(store_alert_index_key(k_new, 'L', 9, 3, 0, id1), 1 + 8 + 1 + 8 + 16);
    assert_int_equal(store_alert_index_key(k_new, 'S', 9, 1, 0, id1), 1 + 8 + 1 + 8 + 16);
}

static void test_commit_get_and_no_duplicates(void **state)
{
    fixture *f = *state;
    commit_all(f->s, TENANT, N_ALERTS);
    char body[64];
    store_alert a = make_alert(3, TENANT, body, sizeof body);
    buf storage;
    buf_init(&storage);
    store_alert got;
    assert_int_equal(store_alert_get(f->s, a.tenant_hash, a.id, &got, &storage), 0);
    assert_int_equal(got.ts_us, a.ts_us);
    assert_int_equal(got.level, a.level);
    assert_int_equal(got.status, STORE_ALERT_NEW);
    assert_int_equal(got.rule_hash, a.rule_hash);
    assert_int_equal(got.host_name_hash, a.host_name_hash);
    assert_int_equal(got.assignee_len, 0);
    assert_int_equal(got.body_len, a.body_len);
    assert_memory_equal(got.body, a.body, a.body_len);
    /* an analyst acknowledges it; a re-run of detection commits the same alerts again */
    assert_int_equal(store_alert_update(f->s, a.tenant_hash, a.id, true, STORE_ALERT_ACKNOWLEDGED, true, "alice", 5,
                                        T_BASE_US + 99, &got, &storage),
                     0);
    store_alert again[N_ALERTS + 1];
    char bodies[N_ALERTS + 1][64];
    bool written[N_ALERTS + 1];
    for (uint32_t i = 0; i < N_ALERTS; i++) again[i] = make_alert(i, TENANT, bodies[i], sizeof bodies[i]);
    again[N_ALERTS] = again[0]; /* the same id twice in one commit */
    uint32_t count = 99;
    assert_int_equal(store_alerts_commit(f->s, again, N_ALERTS + 1, NULL, 0, written, &count), 0);
    assert_int_equal(count, 0);
    for (uint32_t i = 0; i <= N_ALERTS; i++) assert_false(written[i]);
    assert_int_equal(store_alert_get(f->s, a.tenant_hash, a.id, &got, &storage), 0);
    assert_int_equal(got.status, STORE_ALERT_ACKNOWLEDGED);
    assert_int_equal(got.assignee_len, 5);
    assert_memory_equal(got.assignee, "alice", 5);
    assert_int_equal(got.updated_us, T_BASE_US + 99);
    /* a new alert next to existing ones: only it is written; duplicates inside a commit once */
    store_alert fresh[3];
    char fb[3][64];
    fresh[0] = make_alert(0, TENANT, fb[0], sizeof fb[0]);
    fresh[1] = make_alert(0, TENANT, fb[1], sizeof fb[1]);
    store_alert_id(fresh[1].id, 1, 1, 1, 1, "new", 3);
    fresh[2] = fresh[1];
    assert_int_equal(store_alerts_commit(f->s, fresh, 3, NULL, 0, written, &count), 0);
    assert_int_equal(count, 1);
    assert_false(written[0]);
    assert_true(written[1]);
    assert_false(written[2]);
    collected c = {0};
    store_alert_query q = query(TENANT);
    store_alert_page page;
    assert_int_equal(store_alerts_list(f->s, &q, collect, &c, &page), 0);
    assert_int_equal(c.count, N_ALERTS + 1);
    buf_fini(&storage);
}

static void test_listing_filters_and_paging(void **state)
{
    fixture *f = *state;
    commit_all(f->s, TENANT, N_ALERTS);
    store_alert_query q = query(TENANT);
    assert_listing(f->s, &q, all, NULL);
    for (uint32_t level = 1; level <= 5; level++) {
        q = query(TENANT);
        q.level = (int)level;
        assert_listing(f->s, &q, by_level, &level);
    }
    for (uint32_t r = 0; r < 4; r++) {
        q = query(TENANT);
        q.rule_hash = store_alert_term_hash(rules[r], strlen(rules[r]));
        assert_listing(f->s, &q, by_rule, &r);
    }
    for (uint32_t h = 0; h < 3; h++) {
        q = query(TENANT);
        char upper[16];
        snprintf(upper, sizeof upper, "%s", hosts[h]);
        for (char *p = upper; *p; p++)
            if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
        q.host_hash = store_alert_term_hash(upper, strlen(upper)); /* caseless */
        assert_listing(f->s, &q, by_host, &h);
    }
    q = query(TENANT);
    q.host_hash = store_alert_term_hash("agent-7", 7); /* host.id */
    assert_listing(f->s, &q, all, NULL);
    q = query(TENANT);
    q.status = STORE_ALERT_CLOSED;
    assert_listing(f->s, &q, by_closed, NULL);
    uint32_t rl[2] = {1, 2};
    q = query(TENANT);
    q.rule_hash = store_alert_term_hash(rules[1], strlen(rules[1]));
    q.level = 2;
    assert_listing(f->s, &q, by_rule_and_level, rl);
    /* time range: [from, to) on the alert's ts */
    q = query(TENANT);
    q.from_us = T_BASE_US - 10 * 1000000;
    q.to_us = T_BASE_US - 2 * 1000000;
    collected c = {0};
    store_alert_page page;
    assert_int_equal(store_alerts_list(f->s, &q, collect, &c, &page), 0);
    assert_int_equal(c.count, 16); /* ts offsets 2..9 s, two alerts each */
    for (uint32_t i = 0; i < c.count; i++) {
        uint32_t n = c.n[i];
        int64_t ts = T_BASE_US - (int64_t)(n / 2) * 1000000;
        assert_true(ts >= q.from_us && ts < q.to_us);
    }
    /* nothing for another tenant, nothing in an empty range */
    q = query("other");
    c.count = 0;
    assert_int_equal(store_alerts_list(f->s, &q, collect, &c, &page), 0);
    assert_int_equal(c.count, 0);
    q = query(TENANT);
    q.from_us = q.to_us = 5;
    assert_int_equal(store_alerts_list(f->s, &q, collect, &c, &page), 0);
    assert_int_equal(c.count, 0);
}

static void test_update_moves_the_status_index(void **state)
{
    fixture *f = *state;
    commit_all(f->s, TENANT, N_ALERTS);
    char body[64];
    store_alert a = make_alert(1, TENANT, body, sizeof body); /* new */
    buf storage;
    buf_init(&storage);
    store_alert got;
    assert_int_equal(store_alert_update(f->s, a.tenant_hash, a.id, true, STORE_ALERT_CLOSED, false, NULL, 0, 1, &got,
                                        &storage),
                     0);
    assert_int_equal(got.status, STORE_ALERT_CLOSED);
    assert_memory_equal(got.body, a.body, a.body_len); /* the body is untouched */
    store_alert_query q = query(TENANT);
    q.status = STORE_ALERT_CLOSED;
    collected c = {0};
    store_alert_page page;
    assert_int_equal(store_alerts_list(f->s, &q, collect, &c, &page), 0);
    bool found = false;
    for (uint32_t i = 0; i < c.count; i++) found = found || c.n[i] == 1;
    assert_true(found);
    uint32_t closed_before = c.count;
    /* back to new: the closed entry is gone (no stale index entry) */
    assert_int_equal(store_alert_update(f->s, a.tenant_hash, a.id, true, STORE_ALERT_NEW, true, "", 0, 2, &got,
                                        &storage),
                     0);
    c.count = 0;
    assert_int_equal(store_alerts_list(f->s, &q, collect, &c, &page), 0);
    assert_int_equal(c.count, closed_before - 1);
    /* other tenants and absent ids are not found; assignee bound */
    assert_int_equal(store_alert_update(f->s, event_tenant_hash("other"), a.id, true, STORE_ALERT_CLOSED, false, NULL,
                                        0, 3, &got, &storage),
                     -ENOENT);
    assert_int_equal(store_alert_get(f->s, event_tenant_hash("other"), a.id, &got, &storage), -ENOENT);
    char big[STORE_ALERT_ASSIGNEE_MAX + 2];
    memset(big, 'x', sizeof big);
    assert_int_equal(store_alert_update(f->s, a.tenant_hash, a.id, false, STORE_ALERT_NEW, true, big, sizeof big, 4,
                                        &got, &storage),
                     -EINVAL);
    buf_fini(&storage);
}

static int collect_mark(void *ctx, const store_detect_mark *m)
{
    store_detect_mark *out = ctx;
    if (m->agent_hash == 7) *out = *m;
    return 0;
}

static void test_watermarks(void **state)
{
    fixture *f = *state;
    int64_t since = -1, checkpoint = -1;
    assert_int_equal(store_detect_state_get(f->s, &since, &checkpoint), 0);
    assert_int_equal(since, 0);
    assert_int_equal(checkpoint, 0);
    store_detect_mark m = {.tenant_hash = 1, .agent_hash = 7, .seq = 10, .received_us = 500};
    assert_int_equal(store_detect_start(f->s, 400, &m, 1), 0);
    /* a commit raises a mark, never lowers it */
    store_detect_mark up = {1, 7, 12, 900}, down = {1, 7, 11, 950};
    assert_int_equal(store_alerts_commit(f->s, NULL, 0, &up, 1, NULL, NULL), 0);
    assert_int_equal(store_alerts_commit(f->s, NULL, 0, &down, 1, NULL, NULL), 0);
    store_close(f->s);
    f->s = th_open(&f->opt);
    store_detect_mark got = {0};
    assert_int_equal(store_detect_marks_scan(f->s, collect_mark, &got), 0);
    assert_int_equal(got.seq, 12);
    assert_int_equal(got.received_us, 900);
    assert_int_equal(store_detect_state_get(f->s, &since, &checkpoint), 0);
    assert_int_equal(since, 400);
    assert_true(checkpoint >= 900);
}

typedef struct state_seen {
    uint32_t n;
    char keys[8][32];
    char values[8][32];
} state_seen;

static int collect_state(void *ctx, const void *key, size_t key_len, const void *value, size_t value_len)
{
    state_seen *s = ctx;
    assert_true(s->n < 8 && key_len < 32 && value_len < 32);
    memcpy(s->keys[s->n], key, key_len);
    s->keys[s->n][key_len] = '\0';
    memcpy(s->values[s->n], value, value_len);
    s->values[s->n][value_len] = '\0';
    s->n++;
    return 0;
}

/* Correlation checkpoints: puts in the alerts' write, a prefix removed before the puts of the
 * same write, a scan that stays inside its prefix, across a reopen. */
static void test_state_with_commit(void **state)
{
    fixture *f = *state;
    store_state_put puts[] = {{"corr/st/a", 9, "1", 1}, {"corr/st/b", 9, "2", 1}, {"corr/marks", 10, "m1", 2}};
    store_state_write w = {.puts = puts, .put_count = 3};
    store_detect_mark m = {1, 7, 3, 500};
    assert_int_equal(store_alerts_commit_state(f->s, NULL, 0, &m, 1, &w, NULL, NULL), 0);
    /* a full rewrite: corr/st/ cleared, then only b written */
    store_state_put again[] = {{"corr/st/b", 9, "22", 2}, {"corr/marks", 10, "m2", 2}};
    store_state_write full = {.delete_prefix = "corr/st/", .puts = again, .put_count = 2};
    assert_int_equal(store_alerts_commit_state(f->s, NULL, 0, NULL, 0, &full, NULL, NULL), 0);
    store_close(f->s);
    f->s = th_open(&f->opt);
    state_seen seen = {0};
    assert_int_equal(store_state_scan(f->s, "corr/st/", 8, collect_state, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.keys[0], "corr/st/b");
    assert_string_equal(seen.values[0], "22");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(store_state_scan(f->s, "corr/marks", 10, collect_state, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.values[0], "m2");
    /* one key deleted, a binary-keyed range cleared, a put: in one write */
    store_state_put more[] = {{"corr/st/c\x01k1", 11, "3", 1}, {"corr/st/c\x01k2", 11, "4", 1},
                              {"corr/st/d", 9, "5", 1}};
    store_state_write w3 = {.puts = more, .put_count = 3};
    assert_int_equal(store_alerts_commit_state(f->s, NULL, 0, NULL, 0, &w3, NULL, NULL), 0);
    store_state_put range = {"corr/st/c\x01k", 10, NULL, 0}, del = {"corr/st/d", 9, NULL, 0};
    store_state_put after = {"corr/st/c\x01k3", 11, "6", 1};
    store_state_write w4 = {.delete_ranges = &range, .delete_range_count = 1, .deletes = &del, .delete_count = 1,
                            .puts = &after, .put_count = 1};
    assert_int_equal(store_alerts_commit_state(f->s, NULL, 0, NULL, 0, &w4, NULL, NULL), 0);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(store_state_scan(f->s, "corr/st/", 8, collect_state, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.keys[0], "corr/st/b");
    assert_memory_equal(seen.keys[1], "corr/st/c\x01k3", 11);
    /* the watermarks beside them are untouched */
    store_detect_mark got = {0};
    assert_int_equal(store_detect_marks_scan(f->s, collect_mark, &got), 0);
    assert_int_equal(got.seq, 3);
}

typedef struct agents_seen {
    uint32_t n;
    uint64_t seq_sum;
} agents_seen;

static int count_agent(void *ctx, uint64_t th, uint64_t ah, uint64_t seq)
{
    (void)th, (void)ah;
    agents_seen *a = ctx;
    a->n++;
    a->seq_sum += seq;
    return 0;
}

static void test_registries(void **state)
{
    fixture *f = *state;
    arena a;
    arena_init(&a, 1 << 14);
    json_parser *p = json_parser_create();
    mamori_event ev;
    th_event(&a, p, "{\"host\":{\"id\":\"h\"}}", T_BASE_US, 0, &ev);
    store_batch b[2] = {th_batch("t-one", "x", 3, &ev, 1), th_batch("t-two", "y", 5, &ev, 1)};
    store_write_result res;
    assert_int_equal(store_write_group(f->s, b, 2, &res), 0);
    agents_seen seen = {0};
    assert_int_equal(store_list_all_agents(f->s, count_agent, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.seq_sum, 8);
    char name[16];
    assert_int_equal(store_tenant_name(f->s, event_tenant_hash("t-two"), name, sizeof name), 0);
    assert_string_equal(name, "t-two");
    assert_int_equal(store_tenant_name(f->s, event_tenant_hash("nope"), name, sizeof name), -ENOENT);
    assert_int_equal(store_tenant_name(f->s, event_tenant_hash("t-two"), name, 3), -ENOSPC);
    json_parser_destroy(p);
    arena_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_and_terms),
        cmocka_unit_test(test_index_keys_sort_newest_first),
        cmocka_unit_test_setup_teardown(test_commit_get_and_no_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_filters_and_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_moves_the_status_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watermarks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_with_commit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
