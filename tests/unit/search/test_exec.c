/* tests/unit/search/test_exec.c — queries executed against a real store: index plans and
 * scans agree, pages return every row exactly once, pipes, sequences (maxspan, until,
 * seeded windows agree with a full pass), tenant isolation, and events are searchable as
 * soon as their group commit returns (postings still in memory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../store/test_helpers.h"
#include "core/clock.h"
#include "search/search.h"

#define SEC 1000000LL

typedef struct fixture {
    char *dir;
    store *s;
    arena a;
    json_parser *p;
    uint64_t seq;
} fixture;

static fixture F;

/* One event per call, in its own batch (agent = host). */
static void put(const char *tenant, const char *host, int64_t ts, const char *category, const char *pname,
                const char *extra)
{
    char json[2048], stamp[32];
    clock_format_rfc3339(ts, stamp);
    snprintf(json, sizeof json,
             "{\"@timestamp\":\"%s\",\"event\":{\"category\":[\"%s\"]},\"host\":{\"id\":\"%s\",\"name\":\"%s\"},"
             "\"mamori\":{\"agent_id\":\"%s\",\"tenant\":\"%s\"},\"process\":{\"name\":\"%s\"}%s%s}",
             stamp, category, host, host, host, tenant, pname, extra[0] ? "," : "", extra);
    mamori_event ev;
    th_event(&F.a, F.p, json, ts, 0, &ev);
    store_batch b = th_batch(tenant, host, ++F.seq, &ev, 1);
    store_write_result wr;
    assert_int_equal(store_write_group(F.s, &b, 1, &wr), 0);
}

static int setup(void **state)
{
    (void)state;
    F.dir = th_tmpdir();
    store_options o;
    th_options(&o, F.dir);
    F.s = th_open(&o);
    arena_init(&F.a, 1 << 16);
    F.p = json_parser_create();
    int64_t t = T_BASE_US;
    /* host h1: a process chain and network activity; h2: noise; tenant "other" too */
    for (int i = 0; i < 40; i++) {
        char extra[256];
        snprintf(extra, sizeof extra, "\"destination\":{\"ip\":\"10.0.%d.%d\",\"port\":%d}", i % 3, i, 4000 + i);
        put("t1", i % 2 ? "h1" : "h2", t + i * SEC, i % 4 == 0 ? "process" : "network",
            i % 5 == 0 ? "cmd.exe" : "chrome.exe", extra);
    }
    /* a sequence on h3: process then network 2 min later; and one spread 10 min apart on h4;
     * and one on h5 cancelled by an end event in between */
    put("t1", "h3", t + 100 * SEC, "process", "powershell.exe", "\"event_type\":\"start\"");
    put("t1", "h3", t + 220 * SEC, "network", "powershell.exe", "\"destination\":{\"port\":4444}");
    put("t1", "h4", t + 100 * SEC, "process", "powershell.exe", "\"event_type\":\"start\"");
    put("t1", "h4", t + 700 * SEC, "network", "powershell.exe", "\"destination\":{\"port\":4444}");
    put("t1", "h5", t + 100 * SEC, "process", "powershell.exe", "\"event_type\":\"start\"");
    put("t1", "h5", t + 150 * SEC, "process", "powershell.exe", "\"event_type\":\"end\"");
    put("t1", "h5", t + 200 * SEC, "network", "powershell.exe", "\"destination\":{\"port\":4444}");
    for (int i = 0; i < 10; i++) put("other", "h1", t + i * SEC, "process", "cmd.exe", "");
    /* tenant t2: sequences as the correlation engine pairs them (test_sequences_engine) */
    int64_t u = t + 10000 * SEC;
    put("t2", "s1", u, "process", "a.exe", ""); /* overlapping: two sequences, earliest first */
    put("t2", "s1", u + 10 * SEC, "process", "a.exe", "");
    put("t2", "s1", u + 20 * SEC, "process", "b.exe", "");
    put("t2", "s1", u + 30 * SEC, "process", "b.exe", "");
    put("t2", "s2", u, "process", "ab.exe", ""); /* one event matching both stages: no sequence */
    put("t2", "s3", u, "process", "a.exe", ""); /* ab.exe ends one sequence and starts the next */
    put("t2", "s3", u + 10 * SEC, "process", "ab.exe", "");
    put("t2", "s3", u + 20 * SEC, "process", "b.exe", "");
    int64_t v = u + 1000 * SEC; /* pages: what s4's first sequence consumed decides its second */
    put("t2", "s4", v + 1 * SEC, "process", "a.exe", "");
    put("t2", "s4", v + 4500000, "process", "a.exe", "");
    put("t2", "s4", v + 5 * SEC, "process", "b.exe", "");
    put("t2", "s5", v + 6 * SEC, "process", "a.exe", "");
    put("t2", "s5", v + 7 * SEC, "process", "b.exe", "");
    put("t2", "s4", v + 8 * SEC, "process", "b.exe", "");
    *state = &F;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(F.s);
    json_parser_destroy(F.p);
    arena_fini(&F.a);
    th_rmdir(F.dir);
    return 0;
}

static int run(const char *tenant, const char *query, uint32_t limit, const char *cursor, buf *out, search_error *err,
               search_stats *st)
{
    search_query *q = NULL;
    int rc = search_compile(query, strlen(query), &q, err);
    if (rc) return rc;
    search_limits lim;
    search_limits_default(&lim);
    search_request req = {.tenant = tenant, .from_us = T_BASE_US - T_DAY_US, .to_us = T_BASE_US + T_DAY_US,
                          .limit = limit, .cursor = cursor};
    buf_clear(out);
    rc = search_execute(F.s, q, &req, &lim, out, st, err);
    search_query_destroy(q);
    return rc;
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* Runs all pages, returns the concatenated bodies and the number of pages. */
static size_t all_pages(const char *tenant, const char *query, uint32_t limit, buf *all)
{
    buf page;
    buf_init(&page);
    char cursor[300] = "";
    size_t pages = 0;
    buf_clear(all);
    for (;;) {
        search_error err;
        search_stats st;
        int rc = run(tenant, query, limit, cursor, &page, &err, &st);
        if (rc) fail_msg("%s: %s", query, err.message);
        buf_append(all, page.data, page.len);
        pages++;
        const char *c = strstr(buf_cstr(&page), "\"cursor\":\"");
        if (!c) break;
        c += 10;
        size_t n = strcspn(c, "\"");
        snprintf(cursor, sizeof cursor, "%.*s", (int)n, c);
        assert_true(pages < 100);
    }
    buf_fini(&page);
    return pages;
}

static void test_filter_index_and_scan_agree(void **state)
{
    (void)state;
    buf a, b;
    buf_init(&a);
    buf_init(&b);
    search_error err;
    search_stats st;
    assert_int_equal(run("t1", "process where process.name == \"cmd.exe\"", 100, NULL, &a, &err, &st), 0);
    assert_string_equal(st.plan, "index_set");
    /* the same set through a scan: a wildcard the index cannot serve */
    assert_int_equal(run("t1", "any where process.name : \"*md.exe\" and stringContains(event.category, \"process\")", 100, NULL, &b, &err, &st), 0);
    assert_string_equal(st.plan, "scan");
    assert_string_equal(buf_cstr(&a), buf_cstr(&b));
    assert_int_equal(count_of(buf_cstr(&a), "\"event_id\":\""), 10 / 1 ? count_of(buf_cstr(&a), "cmd.exe") : 0);
    assert_true(count_of(buf_cstr(&a), "cmd.exe") > 0);
    assert_null(strstr(buf_cstr(&a), "\"cursor\""));
    /* noise exclusion with not, in, cidrMatch */
    assert_int_equal(run("t1", "network where host.id == \"h1\" and not process.name in (\"cmd.exe\")", 100, NULL, &a,
                         &err, &st), 0);
    assert_int_equal(count_of(buf_cstr(&a), "cmd.exe"), 0);
    assert_int_equal(run("t1", "network where cidrMatch(destination.ip, \"10.0.1.0/24\")", 100, NULL, &a, &err, &st),
                     0);
    assert_true(count_of(buf_cstr(&a), "\"event_id\"") > 0);
    assert_int_equal(count_of(buf_cstr(&a), "10.0.0."), 0);
    buf_fini(&a);
    buf_fini(&b);
}

static void test_pagination_exactly_once(void **state)
{
    (void)state;
    buf one, paged;
    buf_init(&one);
    buf_init(&paged);
    search_error err;
    search_stats st;
    static const char *queries[] = {"any where host.id == \"h1\"", "any where process.name : \"*rome*\"",
                                    "any where true"};
    for (size_t qi = 0; qi < 3; qi++) {
        assert_int_equal(run("t1", queries[qi], 1000, NULL, &one, &err, &st), 0);
        size_t total = count_of(buf_cstr(&one), "\"event_id\"");
        assert_true(total > 5);
        size_t pages = all_pages("t1", queries[qi], 3, &paged);
        assert_int_equal(count_of(buf_cstr(&paged), "\"event_id\""), total);
        assert_true(pages >= total / 3);
        /* every id of the single page appears exactly once in the pages */
        const char *p = buf_cstr(&one);
        while ((p = strstr(p, "\"event_id\":\""))) {
            char id[80];
            snprintf(id, sizeof id, "%.68s", p);
            assert_int_equal(count_of(buf_cstr(&paged), id), 1);
            p++;
        }
    }
    buf_fini(&one);
    buf_fini(&paged);
}

static void test_pipes(void **state)
{
    (void)state;
    buf out;
    buf_init(&out);
    search_error err;
    search_stats st;
    assert_int_equal(run("t1", "any where host.id : \"h1\" | count", 10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), "{\"count\":20}");
    assert_string_equal(st.plan, "index_count");
    assert_int_equal(run("t1", "any where host.id : \"h1\" and destination.port >= 0 | count", 10, NULL, &out, &err, &st),
                     0);
    assert_string_equal(buf_cstr(&out), "{\"count\":20}");
    assert_int_equal(run("t1", "any where host.id == \"h1\" | head 4", 10, NULL, &out, &err, &st), 0);
    assert_int_equal(count_of(buf_cstr(&out), "\"event_id\""), 4);
    assert_null(strstr(buf_cstr(&out), "cursor"));
    /* head across pages stops at N */
    buf all;
    buf_init(&all);
    all_pages("t1", "any where host.id == \"h1\" | head 5", 2, &all);
    assert_int_equal(count_of(buf_cstr(&all), "\"event_id\""), 5);
    /* tail: the last 3, in time order */
    assert_int_equal(run("t1", "any where host.id == \"h2\" | tail 3", 10, NULL, &out, &err, &st), 0);
    assert_int_equal(count_of(buf_cstr(&out), "\"event_id\""), 3);
    assert_non_null(strstr(buf_cstr(&out), "\"port\":4034"));
    assert_non_null(strstr(buf_cstr(&out), "\"port\":4038"));
    assert_true(strstr(buf_cstr(&out), "4034") < strstr(buf_cstr(&out), "4038"));
    all_pages("t1", "any where host.id == \"h2\" | tail 5", 2, &all);
    assert_int_equal(count_of(buf_cstr(&all), "\"event_id\""), 5);
    /* count by, most frequent first */
    assert_int_equal(run("t1", "any where true | count by process.name", 10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out),
                        "{\"counts\":[{\"by\":{\"process.name\":\"chrome.exe\"},\"count\":32},"
                        "{\"by\":{\"process.name\":\"cmd.exe\"},\"count\":8},"
                        "{\"by\":{\"process.name\":\"powershell.exe\"},\"count\":7}]}");
    assert_int_equal(run("t1", "any where true | count by process.name", 2, NULL, &out, &err, &st), 0);
    assert_non_null(strstr(buf_cstr(&out), "\"cursor\""));
    buf_fini(&all);
    buf_fini(&out);
}

static void test_sequences(void **state)
{
    (void)state;
    buf out;
    buf_init(&out);
    search_error err;
    search_stats st;
    const char *q = "sequence by host.id with maxspan=5m [process where process.name == \"powershell.exe\"] "
                    "[network where destination.port == 4444] until [process where event_type == \"end\"]";
    assert_int_equal(run("t1", q, 10, NULL, &out, &err, &st), 0);
    /* h3 fits the span; h4 is spread wider; h5 is cancelled by until */
    assert_int_equal(count_of(buf_cstr(&out), "{\"by\":{\"host.id\":\"h3\"}"), 1);
    assert_int_equal(count_of(buf_cstr(&out), "\"h4\""), 0);
    assert_int_equal(count_of(buf_cstr(&out), "\"h5\""), 0);
    assert_int_equal(count_of(buf_cstr(&out), "\"event_id\""), 2);
    assert_string_equal(st.plan, "sequence_seeded_key_index");
    buf seeded;
    buf_init(&seeded);
    buf_append(&seeded, out.data, out.len);
    /* the same without the index (unindexed predicates): a full pass gives the same answer */
    const char *q2 = "sequence by host.id with maxspan=5m [process where process.name : \"*owershell.exe\"] "
                     "[network where destination.port == 4444] until [process where event_type == \"end\"]";
    assert_int_equal(run("t1", q2, 10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), buf_cstr(&seeded));
    /* wider span finds h4 too; without until h5 appears */
    assert_int_equal(run("t1",
                         "sequence by host.id with maxspan=15m [process where process.name == \"powershell.exe\"] "
                         "[network where destination.port == 4444] | count",
                         10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), "{\"count\":3}");
    /* pages of sequences */
    buf all;
    buf_init(&all);
    all_pages("t1",
              "sequence by host.id with maxspan=15m [process where process.name == \"powershell.exe\"] "
              "[network where destination.port == 4444]",
              1, &all);
    assert_int_equal(count_of(buf_cstr(&all), "{\"by\":"), 3);
    buf_fini(&all);
    buf_fini(&seeded);
    buf_fini(&out);
}

/* Sequences are the correlation engine's temporal_ordered evaluation (detect/correlate_seq.c):
 * earliest in-order matches first, consumed when a sequence completes, an event serves one
 * stage of a sequence, and pages give exactly the one-page answer. */
static void test_sequences_engine(void **state)
{
    (void)state;
    buf out;
    buf_init(&out);
    search_error err;
    search_stats st;
#define SEQ_AB(span, cond) \
    "sequence by host.id with maxspan=" span " [process where " cond "process.name in (\"a.exe\", \"ab.exe\")] " \
    "[process where process.name in (\"b.exe\", \"ab.exe\")]"
    /* s1: 2, s2: 0, s3: 2, s4: 2, s5: 1 (Elastic EQL keeps only the newest partial: 5) */
    assert_int_equal(run("t2", SEQ_AB("1m", "") " | count", 10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), "{\"count\":7}");
    assert_int_equal(run("t2", SEQ_AB("1m", "host.id == \"s2\" and ") " | count", 10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), "{\"count\":0}");
    /* s1: (a@0, b@20) then (a@10, b@30) */
    assert_int_equal(run("t2", SEQ_AB("1m", "host.id == \"s1\" and "), 10, NULL, &out, &err, &st), 0);
    int64_t u = T_BASE_US + 10000 * SEC;
    char t0[40], t10[40], t20[40], t30[40];
    clock_format_rfc3339(u, t0);
    clock_format_rfc3339(u + 10 * SEC, t10);
    clock_format_rfc3339(u + 20 * SEC, t20);
    clock_format_rfc3339(u + 30 * SEC, t30);
    const char *o = buf_cstr(&out);
    assert_int_equal(count_of(o, "{\"by\":{\"host.id\":\"s1\"}"), 2);
    const char *p0 = strstr(o, t0), *p20 = strstr(o, t20), *p10 = strstr(o, t10), *p30 = strstr(o, t30);
    assert_true(p0 && p20 && p10 && p30 && p0 < p20 && p20 < p10 && p10 < p30);
    /* the same without an index (unindexed predicates: a full pass) */
    buf seeded;
    buf_init(&seeded);
    buf_append(&seeded, out.data, out.len);
    assert_int_equal(run("t2",
                         "sequence by host.id with maxspan=1m [process where host.id : \"s1*\" and "
                         "process.name : (\"a.exe\", \"ab.ex?\")] [process where process.name : (\"b.ex?\", \"ab.exe\")]",
                         10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), buf_cstr(&seeded));
    /* s3: (a, ab) and (ab, b) */
    assert_int_equal(run("t2", SEQ_AB("1m", "host.id == \"s3\" and ") " | count", 10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), "{\"count\":2}");
    /* without maxspan: unbounded windows, same pairing */
    assert_int_equal(run("t2",
                         "sequence by host.id [process where host.id == \"s1\" and process.name == \"a.exe\"] "
                         "[process where process.name == \"b.exe\"] | count",
                         10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), "{\"count\":2}");
    /* pages of one row give the one-page answer: s4 (a@1, b@5), s5, s4 (a@4.5, b@8) — a
     * page restarting at cursor - maxspan would have lost a@1 and paired a@4.5 with b@5 */
    buf one, all;
    buf_init(&one);
    buf_init(&all);
    assert_int_equal(run("t2", SEQ_AB("5s", ""), 10, NULL, &one, &err, &st), 0);
    assert_int_equal(count_of(buf_cstr(&one), "{\"by\":"), 3);
    assert_int_equal(count_of(buf_cstr(&one), "{\"by\":{\"host.id\":\"s4\"}"), 2);
    assert_int_equal(all_pages("t2", SEQ_AB("5s", ""), 1, &all), 3);
    assert_int_equal(count_of(buf_cstr(&all), "{\"by\":{\"host.id\":\"s4\"}"), 2);
    assert_int_equal(count_of(buf_cstr(&all), "{\"by\":{\"host.id\":\"s5\"}"), 1);
    /* every event of the one-page answer comes back on the pages, in the same order */
    const char *a = buf_cstr(&one), *b = buf_cstr(&all);
    for (;;) {
        const char *x = strstr(a, "\"event_id\":\""), *y = strstr(b, "\"event_id\":\"");
        assert_true((x == NULL) == (y == NULL));
        if (!x) break;
        assert_memory_equal(x, y, 14 + EVENT_ID_HEX_CHARS);
        a = x + 1;
        b = y + 1;
    }
#undef SEQ_AB
    buf_fini(&one);
    buf_fini(&all);
    buf_fini(&seeded);
    buf_fini(&out);
}

static void test_tenants_and_errors(void **state)
{
    (void)state;
    buf out;
    buf_init(&out);
    search_error err;
    search_stats st;
    assert_int_equal(run("other", "any where true | count", 10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), "{\"count\":10}");
    assert_int_equal(run("nobody", "any where true", 10, NULL, &out, &err, &st), 0);
    assert_string_equal(buf_cstr(&out), "{\"events\":[]}");
    /* a cursor of another query is refused */
    char cursor[300];
    assert_int_equal(run("t1", "any where true", 2, NULL, &out, &err, &st), 0);
    const char *c = strstr(buf_cstr(&out), "\"cursor\":\"") + 10;
    snprintf(cursor, sizeof cursor, "%.*s", (int)strcspn(c, "\""), c);
    assert_int_not_equal(run("t1", "any where false", 2, cursor, &out, &err, &st), 0);
    assert_int_equal(err.code, SEARCH_ERR_BAD_REQUEST);
    assert_int_not_equal(run("t1", "any where true", 2, "garbage", &out, &err, &st), 0);
    assert_int_not_equal(run("t1", "any where true | head 100000", 2, NULL, &out, &err, &st), 0);
    assert_int_equal(err.code, SEARCH_ERR_TOO_LARGE);
    /* explain */
    search_query *q = NULL;
    const char *text = "process where host.id == \"h1\" and process.name == \"cmd.exe\"";
    assert_int_equal(search_compile(text, strlen(text), &q, &err), 0);
    search_limits lim;
    search_limits_default(&lim);
    search_request req = {.tenant = "t1", .from_us = T_BASE_US - T_DAY_US, .to_us = T_BASE_US + T_DAY_US, .limit = 5,
                          .explain = true};
    buf_clear(&out);
    assert_int_equal(search_execute(F.s, q, &req, &lim, &out, &st, &err), 0);
    assert_non_null(strstr(buf_cstr(&out), "\"kind\":\"index_set\""));
    search_query_destroy(q);
    buf_fini(&out);
}

static void test_render_event_id(void **state)
{
    (void)state;
    buf out;
    buf_init(&out);
    store_event_ref ref = {.ts_us = 1, .agent_hash = 2, .seq = 3, .index = 4};
    search_render_event(&out, "{\"a\":1,\"mamori\":{\"agent_id\":\"x\",\"tenant\":\"t\"},\"z\":2}", 52, &ref);
    assert_string_equal(buf_cstr(&out), "{\"a\":1,\"mamori\":{\"agent_id\":\"x\",\"event_id\":\"00000000000000010000000000000002"
                                        "000000000000000300000004\",\"tenant\":\"t\"},\"z\":2}");
    buf_clear(&out);
    search_render_event(&out, "{\"a\":1}", 7, &ref);
    assert_non_null(strstr(buf_cstr(&out), "{\"a\":1,\"mamori\":{\"event_id\":"));
    buf_clear(&out);
    search_render_event(&out, "{\"mamori\":{\"agent_id\":\"x\"}}", 27, &ref);
    assert_non_null(strstr(buf_cstr(&out), "{\"mamori\":{\"agent_id\":\"x\",\"event_id\":"));
    buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_index_and_scan_agree), cmocka_unit_test(test_pagination_exactly_once),
        cmocka_unit_test(test_pipes), cmocka_unit_test(test_sequences), cmocka_unit_test(test_sequences_engine), cmocka_unit_test(test_tenants_and_errors),
        cmocka_unit_test(test_render_event_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
