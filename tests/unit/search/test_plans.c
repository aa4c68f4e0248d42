/* tests/unit/search/test_plans.c — the index plans give exactly what a scan gives, on
 * randomized data whose postings are partly stored (several slices) and partly still in
 * memory: sizes from posting headers, sets narrowed by marking other predicates' postings,
 * counts from the index, and the seeded sequence walk that fetches lazily. Each query is
 * run as written and as an equivalent the index cannot serve (`not (not (…))`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../store/test_helpers.h"
#include "core/clock.h"
#include "search/internal.h" /* the extractor is checked against the full parser directly */
#include "search/search.h"

#define SEC 1000000LL
#define EVENTS 3000

typedef struct fixture {
    char *dir;
    store *s;
    arena a;
    json_parser *p;
    uint64_t seq;
} fixture;

static fixture F;
static uint64_t rng_state = 12345;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((rng_state >> 33) % n);
}

static void put(const char *host, int64_t ts, const char *json_tail)
{
    char json[2048], stamp[32];
    clock_format_rfc3339(ts, stamp);
    snprintf(json, sizeof json,
             "{\"@timestamp\":\"%s\",\"host\":{\"id\":\"%s\",\"name\":\"%s\"},"
             "\"mamori\":{\"agent_id\":\"%s\",\"tenant\":\"t1\"},%s}",
             stamp, host, host, host, json_tail);
    mamori_event ev;
    arena_reset(&F.a);
    th_event(&F.a, F.p, json, ts, 0, &ev);
    store_batch b = th_batch("t1", host, ++F.seq, &ev, 1);
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
    static const char *hosts[] = {"h0", "h1", "H1", "h2", "h3", "h4", "h5", "h6", "h7", "h8"};
    static const char *names[] = {"cmd.exe", "CMD.EXE", "chrome.exe", "chrome.exe", "svchost.exe",
                                  "svchost.exe", "powershell.exe", "rare.exe"};
    static const int ports[] = {443, 443, 80, 4444, 53};
    int64_t t = T_BASE_US;
    for (int i = 0; i < EVENTS; i++) {
        t += (int64_t)rnd(3 * SEC) + 1;
        const char *host = hosts[rnd(MAMORI_ARRAY_LEN(hosts))];
        const char *name = names[rnd(MAMORI_ARRAY_LEN(names))];
        if (!strcmp(name, "rare.exe") && rnd(4)) name = "chrome.exe";
        char tail[512];
        switch (rnd(3)) {
        case 0:
            snprintf(tail, sizeof tail,
                     "\"event\":{\"category\":[\"process\"]},\"event_type\":\"%s\",\"process\":{\"name\":\"%s\"}",
                     rnd(5) ? "start" : "end", name);
            break;
        case 1:
            snprintf(tail, sizeof tail,
                     "\"destination\":{\"ip\":\"10.0.0.%u\",\"port\":%d},\"event\":{\"category\":[\"network\"]},"
                     "\"process\":{\"name\":\"%s\"}",
                     rnd(200), ports[rnd(MAMORI_ARRAY_LEN(ports))], name);
            break;
        default:
            snprintf(tail, sizeof tail,
                     "\"event\":{\"category\":[\"file\"]},\"file\":{\"path\":\"c:\\\\temp\\\\f%u.txt\"},"
                     "\"process\":{\"name\":\"%s\"}",
                     rnd(50), name);
            break;
        }
        put(host, t, tail);
        /* several stored slices, and the last third still in memory */
        if (i == EVENTS / 3 || i == EVENTS * 2 / 3) assert_int_equal(store_flush_index(F.s), 0);
    }
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

static void run_with(const char *query, uint32_t limit, const char *cursor, uint32_t threads, buf *out,
                     search_stats *st)
{
    search_error err;
    search_query *q = NULL;
    if (search_compile(query, strlen(query), &q, &err)) fail_msg("%s: %s", query, err.message);
    search_limits lim;
    search_limits_default(&lim);
    if (threads) lim.scan_threads = threads;
    search_request req = {.tenant = "t1", .from_us = T_BASE_US - T_DAY_US, .to_us = T_BASE_US + T_DAY_US,
                          .limit = limit, .cursor = cursor};
    buf_clear(out);
    if (search_execute(F.s, q, &req, &lim, out, st, &err)) fail_msg("%s: %s", query, err.message);
    search_query_destroy(q);
}

static void run(const char *query, uint32_t limit, buf *out, search_stats *st)
{
    run_with(query, limit, NULL, 0, out, st);
}

/* `C where P` as the index cannot serve it. */
static void unindexed(buf *out, const char *category, const char *cond)
{
    if (!strcmp(category, "any")) buf_printf(out, "any where not (not (%s))", cond);
    else buf_printf(out, "any where not (not (event.category in~ (\"%s\") and (%s)))", category, cond);
}

static void check_filter(const char *category, const char *cond, const char *pipe, const char *want_plan)
{
    buf q1, q2, a, b;
    buf_init(&q1);
    buf_init(&q2);
    buf_init(&a);
    buf_init(&b);
    buf_printf(&q1, "%s where %s%s", category, cond, pipe);
    unindexed(&q2, category, cond);
    buf_puts(&q2, pipe);
    search_stats st;
    run(buf_cstr(&q1), 10000, &a, &st);
    if (want_plan) assert_string_equal(st.plan, want_plan);
    run(buf_cstr(&q2), 10000, &b, &st);
    assert_string_equal(st.plan, "scan");
    if (strcmp(buf_cstr(&a), buf_cstr(&b)) != 0) fail_msg("%s\nindex: %.300s\nscan:  %.300s", buf_cstr(&q1), buf_cstr(&a), buf_cstr(&b));
    assert_true(strstr(buf_cstr(&a), "\"events\":[]") == NULL || pipe[0]);
    buf_fini(&q1);
    buf_fini(&q2);
    buf_fini(&a);
    buf_fini(&b);
}

static void test_filters_agree_with_scans(void **state)
{
    (void)state;
    check_filter("process", "host.id == \"h3\" and process.name == \"cmd.exe\"", "", "index_set");
    check_filter("any", "host.id : \"h1\" and process.name : \"cmd.exe\"", "", "index_set");
    check_filter("network", "host.name == \"h2\" and destination.port == 443", "", "index_set");
    check_filter("any", "process.name in (\"cmd.exe\", \"rare.exe\") and host.id : \"h*\"", "", NULL);
    check_filter("file", "host.id == \"h5\"", "", "index_set");
    check_filter("process", "process.name : \"rare.exe\" and host.id in~ (\"h1\", \"h2\", \"h3\")", "", "index_set");
    check_filter("network", "cidrMatch(destination.ip, \"10.0.0.0/24\") and host.id == \"h4\"", "", NULL);
    /* counts answered from the index alone must count exactly what a scan counts */
    check_filter("any", "host.id : \"h1\" and process.name : \"cmd.exe\"", " | count", "index_count");
    check_filter("process", "host.id : \"h1\" and process.name : \"svchost.exe\"", " | count", "index_count");
    check_filter("any", "process.name : \"rare.exe\"", " | count", "index_count");
    check_filter("any", "host.id : \"nobody\" and process.name : \"cmd.exe\"", " | count", "index_count");
    check_filter("network", "host.id : \"h6\"", " | count by destination.port", NULL);
}

/* A sequence as written and with every stage unindexed (a full pass). */
static void check_sequence(const char *head, const char *const *cats, const char *const *conds, uint32_t n,
                           const char *until_cat, const char *until_cond, const char *pipe)
{
    buf q1, q2, a, b;
    buf_init(&q1);
    buf_init(&q2);
    buf_init(&a);
    buf_init(&b);
    buf_puts(&q1, head);
    buf_puts(&q2, head);
    for (uint32_t i = 0; i < n; i++) {
        buf_printf(&q1, " [%s where %s]", cats[i], conds[i]);
        buf_puts(&q2, " [");
        unindexed(&q2, cats[i], conds[i]);
        buf_puts(&q2, "]");
    }
    if (until_cat) {
        buf_printf(&q1, " until [%s where %s]", until_cat, until_cond);
        buf_puts(&q2, " until [");
        unindexed(&q2, until_cat, until_cond);
        buf_puts(&q2, "]");
    }
    buf_puts(&q1, pipe);
    buf_puts(&q2, pipe);
    search_stats st;
    run(buf_cstr(&q1), 1000, &a, &st);
    assert_string_equal(st.plan, "sequence_seeded_key_index");
    run(buf_cstr(&q2), 1000, &b, &st);
    assert_string_equal(st.plan, "sequence_scan");
    if (strcmp(buf_cstr(&a), buf_cstr(&b)) != 0)
        fail_msg("%s\nseeded: %.400s\nfull:   %.400s", buf_cstr(&q1), buf_cstr(&a), buf_cstr(&b));
    if (!pipe[0]) assert_non_null(strstr(buf_cstr(&a), "{\"by\":"));
    buf_fini(&q1);
    buf_fini(&q2);
    buf_fini(&a);
    buf_fini(&b);
}

static void test_sequences_agree_with_full_pass(void **state)
{
    (void)state;
    const char *c1[] = {"process", "network"};
    const char *p1[] = {"process.name == \"rare.exe\"", "destination.port == 443"};
    check_sequence("sequence by host.id with maxspan=5m", c1, p1, 2, NULL, NULL, "");
    check_sequence("sequence by host.id with maxspan=5m", c1, p1, 2, NULL, NULL, " | count");
    check_sequence("sequence by host.id with maxspan=2m", c1, p1, 2, "process", "event_type == \"end\"", "");
    const char *c2[] = {"process", "file", "network"};
    const char *p2[] = {"process.name : \"rare.exe\"", "true", "destination.port == 4444"};
    check_sequence("sequence by host.id with maxspan=10m", c2, p2, 3, NULL, NULL, "");
    check_sequence("sequence by host.id with maxspan=10m", c2, p2, 3, "network", "destination.port == 53", "");
    /* the seed is the second stage (the smaller set) */
    const char *c3[] = {"network", "process"};
    const char *p3[] = {"destination.port == 80", "process.name == \"rare.exe\""};
    check_sequence("sequence by host.id with maxspan=3m", c3, p3, 2, NULL, NULL, "");
    /* an event may match several stages */
    const char *c4[] = {"any", "any"};
    const char *p4[] = {"process.name : \"rare.exe\"", "process.name : \"rare.exe\" or destination.port == 4444"};
    check_sequence("sequence by host.id with maxspan=5m", c4, p4, 2, NULL, NULL, "");
}

static size_t count_of(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, what)); p++) n++;
    return n;
}

/* Scans on several threads answer exactly as on one: pages (in order, each row once,
 * cursors), counts and count by. */
static void test_parallel_scans_agree(void **state)
{
    (void)state;
    static const char *queries[] = {
        "any where true",
        "any where process.name : \"*md.exe\"",
        "any where not (not (event.category in~ (\"network\") and destination.port == 443))",
        "any where process.name : \"*no-such-name*\"",
    };
    buf one, page, all;
    buf_init(&one);
    buf_init(&page);
    buf_init(&all);
    search_stats st;
    for (size_t qi = 0; qi < MAMORI_ARRAY_LEN(queries); qi++) {
        run_with(queries[qi], 10000, NULL, 1, &one, &st);
        assert_string_equal(st.plan, "scan");
        for (uint32_t threads = 2; threads <= 4; threads += 2) {
            /* one page */
            run_with(queries[qi], 10000, NULL, threads, &page, &st);
            assert_string_equal(buf_cstr(&page), buf_cstr(&one));
            /* small pages: the same rows in the same order */
            buf_clear(&all);
            char cursor[300] = "";
            for (int pages = 0;; pages++) {
                assert_true(pages < 1000);
                run_with(queries[qi], 7, cursor, threads, &page, &st);
                const char *ev = strstr(buf_cstr(&page), "\"events\":[");
                assert_non_null(ev);
                buf_append(&all, ev, strlen(ev));
                const char *c = strstr(buf_cstr(&page), "\"cursor\":\"");
                if (!c) break;
                c += 10;
                snprintf(cursor, sizeof cursor, "%.*s", (int)strcspn(c, "\""), c);
            }
            size_t total = count_of(buf_cstr(&one), "\"event_id\"");
            assert_int_equal(count_of(buf_cstr(&all), "\"event_id\""), total);
            const char *p = buf_cstr(&one);
            const char *last = buf_cstr(&all);
            while ((p = strstr(p, "\"event_id\":\""))) {
                char id[80];
                snprintf(id, sizeof id, "%.68s", p);
                const char *at = strstr(last, id);
                assert_non_null(at); /* present, and after the previous one: same order */
                last = at;
                p++;
            }
        }
    }
    static const char *counts[] = {"any where true | count", "any where process.name : \"*exe\" | count",
                                   "any where true | count by process.name",
                                   "any where destination.port >= 0 | count by host.id, destination.port"};
    for (size_t qi = 0; qi < MAMORI_ARRAY_LEN(counts); qi++) {
        run_with(counts[qi], 1000, NULL, 1, &one, &st);
        run_with(counts[qi], 1000, NULL, 3, &page, &st);
        assert_string_equal(buf_cstr(&page), buf_cstr(&one));
    }
    buf_fini(&one);
    buf_fini(&page);
    buf_fini(&all);
}

/* The lazy extractor answers field_get exactly as the full DOM does (on valid JSON: stored
 * events were parsed at ingest). */
static void test_extractor_agrees_with_full_parse(void **state)
{
    (void)state;
    static const char *docs[] = {
        "{\"a\":{\"b\":1,\"c\":\"x\"},\"d\":[1,{\"e\":2}],\"f\":\"q\\\"uo\\\\te\"}",
        "{ \"a\" : { \"b\" : \"sp ace\" } , \"a.b\" : 7 , \"z\" : null }",
        "{\"a.b\":\"dotted first\",\"a\":{\"b\":\"nested second\"}}",
        "{\"a\":{\"x\":1},\"a\":{\"b\":\"duplicate\"}}",
        "{\"a\":\"not an object\",\"a.b\":[\"arr\",2,true]}",
        "{\"k\\u0041\":1,\"a\":{\"b\":3}}",
        "{\"s\":\"\\\\\",\"a\":{\"b\":\"after backslash-ended string\"},\"t\":\"\\u00e9\\n\"}",
        "{\"long\":\"0123456789abcdef0123456789abcdef\\\"0123456789abcdef\",\"a\":{\"b\":{\"c\":[{\"d\":1}]}}}",
        "{\"a\":{\"b\":\"bad utf8 \xff\"},\"p\":{}}",
        "[1,2]",
        /* skipped containers with brackets and escapes inside strings, across 16-byte blocks */
        "{\"x\":{\"s\":\"br{ack]ets \\\" and \\\\\",\"t\":[\"[{\",{\"u\":\"}}\"}],\"v\":\"0123456789abcdef\\\\\"},\"y\":[[[\"]]]\"]],{\"z\":\"\\\\\\\"\"}],\"a\":{\"b\":\"found\"}}",
        "{\"x\":{\"aaaaaaaaaaaaaaa\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb{\",\"c\":{\"d\":\"e\\\\\"}},\"a\":{\"b\":2}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w0\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\a\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w1\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w2\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w3\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w4\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w5\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w6\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w7\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w8\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w9\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w10\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w11\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w12\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w13\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w14\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w15\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w16\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w17\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w18\"}}",
        "{\"x\":{\"p\":\"C:\\\\Windows\\\\aaaaaaaaaaaaaaaaaaa\\\"q\\\\\",\"r\":\"]}\"},\"a\":{\"b\":\"w19\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"z\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzzzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzzzzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzzzzzzzzzz\\\"\\\\\"}}",
        "{\"a\":{\"b\":1},\"x\":{\"p\":\"zzzzzzzzzzzzzzzzz\\\"\\\\\"}}",
    };
    static const char *paths[] = {"a", "a.b", "a.b.c", "d", "f", "z", "a.x", "kA", "s", "t", "long", "p", "q.r"};
    json_parser *jp = json_parser_create();
    arena a;
    arena_init(&a, 1 << 16);
    search_query *q = NULL;
    search_error err;
    /* field_refs come from a compiled query */
    const char *text = "any where a == 1 and a.b == 1 and a.b.c == 1 and d == 1 and f == 1 and z == 1 and a.x == 1 "
                       "and kA == 1 and s == 1 and t == 1 and long == 1 and p == 1 and q.r == 1";
    assert_int_equal(search_compile(text, strlen(text), &q, &err), 0);
    const node *and = q->filter.cond;
    assert_int_equal(and->kind, NODE_AND);
    assert_int_equal(and->kid_count, MAMORI_ARRAY_LEN(paths));
    for (size_t d = 0; d < MAMORI_ARRAY_LEN(docs); d++) {
        for (size_t mask = 1; mask < 8; mask++) {
            /* subsets of the paths: a few at a time, then all */
            field_set fs = {0};
            for (size_t i = 0; i < MAMORI_ARRAY_LEN(paths); i++)
                if (mask == 7 || i % 3 == mask % 3) field_set_add(&fs, &and->kids[i]->field);
            json_value full, lazy;
            json_error je;
            arena_reset(&a);
            int rf = json_parse(jp, &a, docs[d], strlen(docs[d]), &full, &je);
            int rl = extract_event(jp, &a, &fs, docs[d], strlen(docs[d]), &lazy, &je);
            if (rf) fail_msg("doc %zu is not JSON: %s at %zu", d, je.msg, je.offset); /* all must be valid */
            assert_int_equal(rl, 0);
            if (rf) continue;
            for (uint32_t i = 0; i < fs.n; i++) {
                const json_value *x = field_get(&full, fs.v[i]), *y = field_get(&lazy, fs.v[i]);
                buf bx, by;
                buf_init(&bx);
                buf_init(&by);
                if (x) json_write_value(&bx, x);
                if (y) json_write_value(&by, y);
                if ((x == NULL) != (y == NULL) || strcmp(buf_cstr(&bx), buf_cstr(&by)) != 0)
                    fail_msg("doc %zu path %s: full %s lazy %s", d, fs.v[i]->path, buf_cstr(&bx), buf_cstr(&by));
                if (x) assert_int_equal(x->flags, y->flags);
                buf_fini(&bx);
                buf_fini(&by);
            }
        }
    }
    search_query_destroy(q);
    arena_fini(&a);
    json_parser_destroy(jp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters_agree_with_scans),
        cmocka_unit_test(test_sequences_agree_with_full_pass),
        cmocka_unit_test(test_parallel_scans_agree),
        cmocka_unit_test(test_extractor_agrees_with_full_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
