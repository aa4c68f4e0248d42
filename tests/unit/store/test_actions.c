/* tests/unit/store/test_actions.c — response actions in the store: creation with command
 * numbers and the pending limit, transitions (forward only, final is final, history), the
 * pending-delivery, expiry and listing indexes, desired isolation, fetched files, the agent
 * registry and the audit log — also across a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>

#include "test_helpers.h"

static const char *const TENANT = "acme";

static store_action make(uint64_t agent_hash, const char *action, const char *args, int64_t now, int64_t expires)
{
    store_action a = {0};
    a.tenant_hash = event_tenant_hash(TENANT);
    a.agent_hash = agent_hash;
    store_action_id_new(a.id);
    a.tenant = TENANT;
    a.agent_id = "ws-1";
    a.action = action;
    a.actor = "key:test";
    a.args = args;
    a.args_len = (uint32_t)strlen(args);
    a.created_us = now;
    a.expires_us = expires;
    return a;
}

static int collect_pending(void *ctx, uint64_t cmd_no, const uint8_t id[STORE_ACTION_ID_BYTES])
{
    (void)id;
    uint64_t *v = ctx;
    v[++v[0]] = cmd_no;
    return 0;
}

static int count_expired(void *ctx, uint64_t th, const uint8_t id[STORE_ACTION_ID_BYTES])
{
    (void)th;
    (void)id;
    (*(int *)ctx)++;
    return 0;
}

static int collect_list(void *ctx, const store_action *a)
{
    uint64_t *v = ctx;
    v[++v[0]] = a->cmd_no;
    return 0;
}

static void test_lifecycle(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    store_options o;
    th_options(&o, dir);
    store *s = th_open(&o);
    uint64_t th = event_tenant_hash(TENANT), ah = event_agent_hash(TENANT, "ws-1");
    int64_t now = T_BASE_US;
    store_audit au = {.at_us = now, .tenant_hash = th, .tenant = TENANT, .actor = "key:test", .what = "action.create",
                      .target = "ws-1", .result = "queued"};
    store_action a1 = make(ah, "isolate", "{}", now, now + 1000000);
    assert_int_equal(store_action_create(s, &a1, 3, STORE_ISOLATION_ISOLATED, &au), 0);
    assert_int_equal(a1.cmd_no, 1);
    store_action a2 = make(ah, "list_processes", "{}", now + 1, now + 5000000);
    assert_int_equal(store_action_create(s, &a2, 3, STORE_ISOLATION_UNKNOWN, NULL), 0);
    assert_int_equal(a2.cmd_no, 2);
    store_action a3 = make(ah, "list_dir", "{\"path\":\"/x\"}", now + 2, now + 5000000);
    assert_int_equal(store_action_create(s, &a3, 3, STORE_ISOLATION_UNKNOWN, NULL), 0);
    store_action a4 = make(ah, "list_dir", "{\"path\":\"/y\"}", now + 3, now + 5000000);
    assert_int_equal(store_action_create(s, &a4, 3, STORE_ISOLATION_UNKNOWN, NULL), -EDQUOT);

    int desired;
    int64_t at;
    assert_int_equal(store_agent_isolation_get(s, th, ah, &desired, &at), 0);
    assert_int_equal(desired, STORE_ISOLATION_ISOLATED);
    assert_int_equal(at, now);

    uint64_t v[16] = {0};
    assert_int_equal(store_actions_pending(s, th, ah, collect_pending, v), 0);
    assert_int_equal(v[0], 3);
    assert_int_equal(v[1], 1);
    assert_int_equal(v[3], 3);

    buf st;
    buf_init(&st);
    store_action r;
    assert_int_equal(store_action_update(s, th, a2.id, STORE_ACTION_SENT, now + 10, NULL, 0, NULL, 0, NULL, &r, &st), 0);
    assert_int_equal(r.status, STORE_ACTION_SENT);
    /* sent again (reconnect): no change */
    assert_int_equal(store_action_update(s, th, a2.id, STORE_ACTION_SENT, now + 11, NULL, 0, NULL, 0, NULL, &r, &st), 0);
    assert_int_equal(r.history_count, 2);
    const char *out = "{\"processes\":[]}";
    assert_int_equal(store_action_update(s, th, a2.id, STORE_ACTION_SUCCEEDED, now + 20, out, strlen(out), NULL, 0, &au,
                                         &r, &st),
                     0);
    assert_int_equal(r.status, STORE_ACTION_SUCCEEDED);
    assert_int_equal(r.history_count, 3);
    assert_int_equal(r.history[2].at_us, now + 20);
    assert_string_equal(r.output, out);
    assert_string_equal(r.action, "list_processes");
    assert_string_equal(r.agent_id, "ws-1");
    /* final is final */
    assert_int_equal(store_action_update(s, th, a2.id, STORE_ACTION_FAILED, now + 30, NULL, 0, "x", 1, NULL, NULL, NULL),
                     -EALREADY);
    /* the pending index lost it; a fourth action now fits */
    memset(v, 0, sizeof v);
    assert_int_equal(store_actions_pending(s, th, ah, collect_pending, v), 0);
    assert_int_equal(v[0], 2);
    assert_int_equal(store_action_create(s, &a4, 3, STORE_ISOLATION_UNKNOWN, NULL), 0);
    assert_int_equal(a4.cmd_no, 4);

    /* expiry: only a1 is due at now + 2 s */
    int n = 0;
    assert_int_equal(store_actions_expired(s, now + 2000000, count_expired, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_action_update(s, th, a1.id, STORE_ACTION_EXPIRED, now + 2000000, NULL, 0, NULL, 0, NULL,
                                         NULL, NULL),
                     0);
    n = 0;
    assert_int_equal(store_actions_expired(s, now + 2000000, count_expired, &n), 0);
    assert_int_equal(n, 0);

    /* listing newest first, paged, filtered */
    memset(v, 0, sizeof v);
    uint64_t next = 0;
    assert_int_equal(store_actions_list(s, th, ah, -1, 0, 2, 0, collect_list, v, &next), 0);
    assert_int_equal(v[0], 2);
    assert_int_equal(v[1], 4);
    assert_int_equal(v[2], 3);
    assert_int_equal(next, 3);
    memset(v, 0, sizeof v);
    assert_int_equal(store_actions_list(s, th, ah, -1, next, 10, 0, collect_list, v, &next), 0);
    assert_int_equal(v[0], 2);
    assert_int_equal(v[1], 2);
    assert_int_equal(v[2], 1);
    assert_int_equal(next, 0);
    memset(v, 0, sizeof v);
    assert_int_equal(store_actions_list(s, th, ah, STORE_ACTION_EXPIRED, 0, 10, 0, collect_list, v, &next), 0);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 1);
    /* another tenant sees nothing */
    assert_int_equal(store_action_get(s, event_tenant_hash("other"), a3.id, &r, &st), -ENOENT);

    /* survives a reopen, and the command numbers go on */
    store_close(s);
    s = th_open(&o);
    assert_int_equal(store_action_get(s, th, a2.id, &r, &st), 0);
    assert_int_equal(r.status, STORE_ACTION_SUCCEEDED);
    store_action a5 = make(ah, "release", "{}", now + 40, now + 5000000);
    assert_int_equal(store_action_create(s, &a5, 10, STORE_ISOLATION_NONE, NULL), 0);
    assert_int_equal(a5.cmd_no, 5);
    assert_int_equal(store_agent_isolation_get(s, th, ah, &desired, &at), 0);
    assert_int_equal(desired, STORE_ISOLATION_NONE);
    buf_fini(&st);
    store_close(s);
    th_rmdir(dir);
}

static void test_history_bounded(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    store_options o;
    th_options(&o, dir);
    store *s = th_open(&o);
    uint64_t th = event_tenant_hash(TENANT), ah = event_agent_hash(TENANT, "ws-1");
    store_action a = make(ah, "kill_process", "{\"pid\":1}", T_BASE_US, T_BASE_US + 1000000);
    assert_int_equal(store_action_create(s, &a, 10, STORE_ISOLATION_UNKNOWN, NULL), 0);
    buf st;
    buf_init(&st);
    store_action r;
    assert_int_equal(store_action_update(s, th, a.id, STORE_ACTION_RUNNING, T_BASE_US + 5, NULL, 0, NULL, 0, NULL, &r,
                                         &st),
                     0);
    assert_int_equal(store_action_update(s, th, a.id, STORE_ACTION_FAILED, T_BASE_US + 6, NULL, 0, "no such process",
                                         15, NULL, &r, &st),
                     0);
    assert_int_equal(r.history_count, 3);
    assert_string_equal(r.error, "no such process");
    assert_null(r.output);
    buf_fini(&st);
    store_close(s);
    th_rmdir(dir);
}

static void test_batch_update(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    store_options o;
    th_options(&o, dir);
    store *s = th_open(&o);
    uint64_t th = event_tenant_hash(TENANT), ah = event_agent_hash(TENANT, "ws-1");
    uint8_t ids[3][STORE_ACTION_ID_BYTES];
    for (int i = 0; i < 3; i++) {
        store_action a = make(ah, "list_processes", "{}", T_BASE_US + i, T_BASE_US + 1000000);
        assert_int_equal(store_action_create(s, &a, 10, STORE_ISOLATION_UNKNOWN, NULL), 0);
        memcpy(ids[i], a.id, sizeof ids[i]);
    }
    /* the second is already final: not moved */
    assert_int_equal(store_action_update(s, th, ids[1], STORE_ACTION_FAILED, T_BASE_US + 5, NULL, 0, "x", 1, NULL, NULL,
                                         NULL),
                     0);
    store_audit au[3];
    for (int i = 0; i < 3; i++)
        au[i] = (store_audit){.at_us = T_BASE_US + 9, .tenant_hash = th, .tenant = TENANT, .actor = "mamori",
                              .what = "action.status", .target = "ws-1", .result = "sent"};
    bool changed[3];
    assert_int_equal(store_actions_update_batch(s, th, (const uint8_t(*)[STORE_ACTION_ID_BYTES])ids, 3,
                                                STORE_ACTION_SENT, T_BASE_US + 9, au, changed),
                     0);
    assert_true(changed[0]);
    assert_false(changed[1]);
    assert_true(changed[2]);
    /* again: nothing moves */
    assert_int_equal(store_actions_update_batch(s, th, (const uint8_t(*)[STORE_ACTION_ID_BYTES])ids, 3,
                                                STORE_ACTION_SENT, T_BASE_US + 10, NULL, changed),
                     0);
    assert_false(changed[0] || changed[1] || changed[2]);
    buf st;
    buf_init(&st);
    store_action r;
    assert_int_equal(store_action_get(s, th, ids[2], &r, &st), 0);
    assert_int_equal(r.status, STORE_ACTION_SENT);
    assert_int_equal(r.history_count, 2);
    buf_fini(&st);
    store_close(s);
    th_rmdir(dir);
}

static int collect_info(void *ctx, uint64_t agent_hash, const char *json, size_t len)
{
    (void)agent_hash;
    buf *b = ctx;
    buf_append(b, json, len);
    buf_putc(b, '|');
    return 0;
}

typedef struct audit_seen {
    int n;
    store_audit_pos last;
    char first[512];
} audit_seen;

static int collect_audit(void *ctx, const char *json, size_t len, const store_audit_pos *pos)
{
    audit_seen *a = ctx;
    if (a->n == 0) snprintf(a->first, sizeof a->first, "%.*s", (int)len, json);
    a->n++;
    a->last = *pos;
    return a->n == 2; /* pages of two */
}

static void test_files_registry_audit(void **state)
{
    (void)state;
    char *dir = th_tmpdir();
    store_options o;
    th_options(&o, dir);
    store *s = th_open(&o);
    uint64_t th = event_tenant_hash(TENANT), ah = event_agent_hash(TENANT, "ws-1");
    uint8_t sha[STORE_SHA256_BYTES];
    memset(sha, 0xab, sizeof sha);
    buf b;
    buf_init(&b);
    assert_int_equal(store_file_put(s, th, sha, "hello", 5), 0);
    assert_int_equal(store_file_get(s, th, sha, &b), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "hello", 5);
    assert_int_equal(store_file_get(s, event_tenant_hash("other"), sha, &b), -ENOENT);

    assert_int_equal(store_agent_info_get(s, th, ah, &b), -ENOENT);
    assert_int_equal(store_agent_info_put(s, th, ah, "{\"id\":\"ws-1\"}", 13), 0);
    assert_int_equal(store_agent_info_put(s, th, event_agent_hash(TENANT, "ws-2"), "{\"id\":\"ws-2\"}", 13), 0);
    assert_int_equal(store_agent_info_put(s, event_tenant_hash("other"), ah, "{\"id\":\"x\"}", 10), 0);
    buf_clear(&b);
    assert_int_equal(store_agent_info_scan(s, th, collect_info, &b), 0);
    assert_int_equal(b.len, 28);

    for (int i = 0; i < 5; i++) {
        char what[16];
        snprintf(what, sizeof what, "w%d", i);
        store_audit a = {.at_us = T_BASE_US + i, .tenant_hash = th, .tenant = TENANT, .actor = "key:x", .what = what,
                         .target = "ws-1", .detail = "{\"k\":1}", .detail_len = 7, .result = "ok"};
        assert_int_equal(store_audit_append(s, &a), 0);
    }
    store_audit other = {.at_us = T_BASE_US, .tenant_hash = event_tenant_hash("other"), .tenant = "other",
                         .what = "x", .result = "ok"};
    assert_int_equal(store_audit_append(s, &other), 0);
    audit_seen seen = {0};
    assert_int_equal(store_audit_list(s, th, INT64_MIN, INT64_MAX, NULL, collect_audit, &seen), 1);
    assert_int_equal(seen.n, 2);
    assert_non_null(strstr(seen.first, "\"what\":\"w4\"")); /* newest first */
    assert_non_null(strstr(seen.first, "\"detail\":{\"k\":1}"));
    store_audit_pos after = seen.last;
    seen = (audit_seen){0};
    assert_int_equal(store_audit_list(s, th, INT64_MIN, INT64_MAX, &after, collect_audit, &seen), 1);
    assert_non_null(strstr(seen.first, "\"what\":\"w2\""));
    seen = (audit_seen){0};
    assert_int_equal(store_audit_list(s, th, T_BASE_US + 1, T_BASE_US + 3, NULL, collect_audit, &seen), 1);
    assert_non_null(strstr(seen.first, "\"what\":\"w2\""));
    assert_int_equal(seen.last.at_us, T_BASE_US + 1);
    buf_fini(&b);
    store_close(s);
    th_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_history_bounded),
        cmocka_unit_test(test_batch_update),
        cmocka_unit_test(test_files_registry_audit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
