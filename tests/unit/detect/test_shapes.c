/* tests/unit/detect/test_shapes.c — walk plans by event shape (detect/plan.c): events of one
 * shape are walked from a cached plan, and that must never change what fires. The field
 * path hash (core/event.h) is cheap on purpose — the last 8 bytes and the length — so
 * "process.executable" and "xrocess.executable" share it; SourceProcessId and
 * TargetProcessId do too in real Sysmon events. A plan built from one of them must not be
 * replayed on the other, in either order, in one batch or across batches. */
#include "helpers.h"

#include "core/event.h"

#include <sys/mman.h>
#include <unistd.h>

#define MAX_EVENTS 16

typedef struct events {
    mamori_event ev[MAX_EVENTS];
    size_t n;
} events;

/* Normalizes each JSON text (format auto) into e, all in h->mem. */
static void normalize_all(harness *h, const char *const *json, size_t n, events *e)
{
    arena_reset(&h->mem);
    assert_true(n <= MAX_EVENTS);
    event_stamp stamp = {.tenant = "t", .agent_id = "a", .agent_hash = 1, .seq = 1, .received_us = 1714566896000000LL};
    for (size_t i = 0; i < n; i++) {
        json_value *v = arena_alloc(&h->mem, sizeof *v);
        json_error jerr;
        assert_int_equal(json_parse(h->parser, &h->mem, json[i], strlen(json[i]), v, &jerr), 0);
        char why[128];
        int rc = normalize_event(h->norm, &h->mem, EVENT_FORMAT_AUTO, v, &stamp, (uint32_t)i, &e->ev[i], why, sizeof why);
        if (rc) fprintf(stderr, "normalize: %s\n", why);
        assert_int_equal(rc, 0);
    }
    e->n = n;
}

static void count_by_event(void *ctx, size_t event_index, const detect_rule *rule)
{
    (void)rule;
    ((size_t *)ctx)[event_index]++;
}

/* Evaluates e as one batch; fired[i] = rules that fired on event i. */
static void eval_batch(harness *h, const events *e, size_t *fired)
{
    memset(fired, 0, e->n * sizeof *fired);
    detect_eval_batch(h->worker, e->ev, e->n, count_by_event, fired);
}

static const char *const exe_rule = "title: exe\nid: exe\nlogsource:\n    category: process_creation\n    product: windows\n"
                                    "detection:\n    sel:\n        Image|endswith: '\\evil.exe'\n    condition: sel\n";

/* An ECS process start whose executable lives at `path` ("process" or a lookalike). */
static void process_event(char *out, size_t size, const char *path, const char *exe)
{
    snprintf(out, size,
             "{\"event\":{\"category\":[\"process\"],\"type\":[\"start\"]},\"host\":{\"os\":{\"type\":\"windows\"}},"
             "\"%s\":{\"executable\":\"%s\"}}",
             path, exe);
}

static void test_hash_lookalike_in_batch(void **state)
{
    (void)state;
    /* the premise: the two paths share length and hash, so only their bytes tell them apart */
    assert_int_equal(event_path_hash("process.executable", 18), event_path_hash("xrocess.executable", 18));
    harness h;
    harness_init(&h, exe_rule);
    harness_expect_loaded(&h, 1);
    char real[512], fake[512];
    process_event(real, sizeof real, "process", "C:\\\\evil.exe");
    process_event(fake, sizeof fake, "xrocess", "C:\\\\evil.exe");
    /* alternating, starting with either: each plan is built from one and offered to the other */
    const char *const orders[2][6] = {{real, fake, real, fake, fake, real}, {fake, real, fake, real, real, fake}};
    for (int o = 0; o < 2; o++) {
        events e;
        normalize_all(&h, orders[o], 6, &e);
        size_t fired[MAX_EVENTS];
        for (int round = 0; round < 3; round++) { /* across batches too: plans outlive a batch */
            eval_batch(&h, &e, fired);
            for (size_t i = 0; i < e.n; i++) assert_int_equal(fired[i], orders[o][i] == real ? 1 : 0);
        }
        for (size_t i = 0; i < e.n; i++) { /* and one by one */
            const detect_match *m;
            assert_int_equal(detect_eval(h.worker, &e.ev[i], &m), orders[o][i] == real ? 1 : 0);
        }
    }
    harness_fini(&h);
}

/* EventData names of one length ending alike share their hash (in real Sysmon process
 * access events SourceProcessId and TargetProcessId do): a rule reading one must see it,
 * and only it, whichever came first. */
static void test_event_data_lookalikes(void **state)
{
    (void)state;
    assert_int_equal(event_path_hash("winlog.event_data.FooProcessId", 30),
                     event_path_hash("winlog.event_data.BarProcessId", 30));
    harness h;
    harness_init(&h, "title: foo\nid: foo\nlogsource:\n    category: process_access\n    product: windows\n"
                     "detection:\n    sel:\n        FooProcessId: '4242'\n    condition: sel\n");
    harness_expect_loaded(&h, 1);
#define ACCESS_EVENT(field)                                                                                         \
    "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":10,"                 \
    "\"Computer\":\"ws1\",\"TimeCreated\":{\"#attributes\":{\"SystemTime\":\"2024-05-01T12:00:00Z\"}}},"              \
    "\"EventData\":{\"" field "\":\"4242\",\"SourceImage\":\"C:\\\\a.exe\"}}}"
    const char *a = ACCESS_EVENT("FooProcessId"), *b = ACCESS_EVENT("BarProcessId");
    const char *const order[] = {b, a, b, b, a, a, b};
    events e;
    normalize_all(&h, order, 7, &e);
    size_t fired[MAX_EVENTS];
    for (int round = 0; round < 2; round++) {
        eval_batch(&h, &e, fired);
        for (size_t i = 0; i < e.n; i++) assert_int_equal(fired[i], order[i] == a ? 1 : 0);
    }
    harness_fini(&h);
}

/* Events of one shape are walked from the cached plan (counted), and what fires is what a
 * worker without plans (a fresh one, per event) fires. */
static void test_plans_used_and_exact(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, exe_rule);
    char texts[8][512];
    const char *json[8];
    for (int i = 0; i < 8; i++) {
        process_event(texts[i], sizeof texts[i], "process", i % 3 ? "C:\\\\good.exe" : "C:\\\\evil.exe");
        json[i] = texts[i];
    }
    events e;
    normalize_all(&h, json, 8, &e);
    size_t fired[MAX_EVENTS];
    detect_worker_stats before, after;
    detect_worker_stats_get(h.worker, &before);
    eval_batch(&h, &e, fired);
    detect_worker_stats_get(h.worker, &after);
    assert_int_equal(after.shape_hits - before.shape_hits, 7); /* the first one built it */
    for (size_t i = 0; i < e.n; i++) {
        assert_int_equal(fired[i], i % 3 ? 0 : 1);
        detect_worker *fresh = detect_worker_create();
        assert_int_equal(detect_worker_bind(fresh, h.rs), 0);
        const detect_match *m;
        assert_int_equal(detect_eval(fresh, &e.ev[i], &m), fired[i]);
        detect_worker_destroy(fresh);
    }
    harness_fini(&h);
}

/* A rebind forgets the plans: their path ids and databases belong to the old rule set. */
static void test_rebind_forgets_plans(void **state)
{
    (void)state;
    harness h1, h2;
    harness_init(&h1, exe_rule);
    harness_init(&h2, "title: cmd\nid: cmd\nlogsource:\n    category: process_creation\n    product: windows\n"
                      "detection:\n    sel:\n        CommandLine|contains: 'steal'\n    condition: sel\n");
    const char *json[] = {"{\"event\":{\"category\":[\"process\"],\"type\":[\"start\"]},\"host\":{\"os\":{\"type\":\"windows\"}},"
                          "\"process\":{\"executable\":\"C:\\\\evil.exe\",\"command_line\":\"steal it\"}}"};
    events e;
    normalize_all(&h1, json, 1, &e);
    size_t fired[MAX_EVENTS];
    for (int i = 0; i < 3; i++) {
        eval_batch(&h1, &e, fired); /* h1's worker plans the shape under h1's rule set */
        assert_int_equal(fired[0], 1);
    }
    const detect_match *m;
    assert_int_equal(detect_worker_bind(h1.worker, h2.rs), 0);
    assert_int_equal(detect_eval(h1.worker, &e.ev[0], &m), 1);
    assert_string_equal(m[0].rule->id, "cmd");
    assert_int_equal(detect_worker_bind(h1.worker, h1.rs), 0);
    assert_int_equal(detect_eval(h1.worker, &e.ev[0], &m), 1);
    assert_string_equal(m[0].rule->id, "exe");
    harness_fini(&h2);
    harness_fini(&h1);
}

/* Keyword searches join an event's values but skip those shorter than any keyword could
 * match (detect/scan.c join_text): a value exactly as long as the shortest keyword is still
 * searched, at the start, the end or alone, and short values around it change nothing. */
static void test_join_skips_short_values(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, "title: kw\nid: kw\nlogsource:\n    product: windows\ndetection:\n    k:\n        - 'hello'\n"
                     "        - 'sekurlsa::'\n    condition: k\n");
    harness_expect_loaded(&h, 1);
#define KW_EVENT(data)                                                                                          \
    "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"                 \
    "\"Computer\":\"ws1\",\"TimeCreated\":{\"#attributes\":{\"SystemTime\":\"2024-05-01T12:00:00Z\"}}},"              \
    "\"EventData\":{" data "}}}"
    assert_true(harness_fires(&h, KW_EVENT("\"A\":\"hello\"")));
    assert_true(harness_fires(&h, KW_EVENT("\"A\":\"x\",\"B\":\"HELLO\",\"C\":\"y\"")));
    assert_true(harness_fires(&h, KW_EVENT("\"A\":\"hello world\",\"B\":\"1\"")));
    assert_true(harness_fires(&h, KW_EVENT("\"A\":\"ab\",\"B\":\"say hello\"")));
    assert_false(harness_fires(&h, KW_EVENT("\"A\":\"hell\",\"B\":\"o\"")));
    assert_false(harness_fires(&h, KW_EVENT("\"A\":\"he\",\"B\":\"llo\",\"C\":\"sekurlsa:\"")));
    harness_fini(&h);
}

/* A keyword value that ends the event's longest one (NXLog's Sysmon `Message` ends with its
 * `CallTrace`) is not joined again when it does so byte for byte (struct shape's container):
 * the shape remembers that it did, each event checks it. A keyword in the shorter value is
 * found in the longer one; when the longer one no longer ends with it, the shorter one is
 * joined and searched itself. */
static void test_join_skips_value_ending_another(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, "title: kw\nid: kw\nlogsource:\n    product: windows\ndetection:\n    k:\n        - 'kiwikiwi'\n"
                     "    condition: k\n");
    harness_expect_loaded(&h, 1);
    char filler[201], with_kw[201], json[2048];
    memset(filler, 'x', 200);
    filler[200] = '\0';
    memcpy(with_kw, filler, sizeof with_kw);
    memcpy(with_kw + 150, "KIWIkiwi", 8);
    static const struct {
        const char *a_prefix_of_b; /* B is this, then A's text */
        bool a_kw, b_ends_with_a, fires;
    } cases[] = {
        {"trace: ", false, true, false},  /* builds the shape: A ends B */
        {"trace: ", true, true, true},    /* A not joined: found in B */
        {"trace: ", true, false, true},   /* B ends otherwise: A joined and searched */
        {"kiwikiwi ", false, true, true}, /* in B's own part */
        {"trace: ", false, false, false},
        {"", true, true, true}, /* A and B equal: B is joined */
    };
    detect_worker_stats before, after;
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(cases); i++) {
        const char *a = cases[i].a_kw ? with_kw : filler;
        snprintf(json, sizeof json, KW_EVENT("\"A\":\"%s\",\"B\":\"%s%s\""), a, cases[i].a_prefix_of_b,
                 cases[i].b_ends_with_a ? a : "yyyy");
        detect_worker_stats_get(h.worker, &before);
        if (harness_fires(&h, json) != cases[i].fires) fail_msg("case %zu: fired %d", i, !cases[i].fires);
        detect_worker_stats_get(h.worker, &after);
        /* A skipped exactly when B ends with it (the first event builds the shape, then walks it) */
        assert_int_equal(after.join_suffixes - before.join_suffixes, cases[i].b_ends_with_a ? 1 : 0);
    }
    harness_fini(&h);
}

/* A field of the event with this path (the test's events hold it). */
static event_field *field_at(mamori_event *ev, const char *path)
{
    for (uint32_t i = 0; i < ev->field_count; i++)
        if (!strcmp(ev->fields[i].path, path)) return &ev->fields[i];
    fail_msg("no field %s", path);
    return NULL;
}

/* Fields only keyword searches read are joined in a loop of their own (plan.c shape_build,
 * scan.c join_fields); a text of up to 32 bytes is copied as one 32-byte block when that
 * stays inside its page. The keyword must be found in each such field at every length
 * around the block size, never past a text's end (what the block copies beyond it), and a
 * text ending right before an unmapped page must not be read past. */
static void test_join_only_fields(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, "title: kw\nid: kw\nlogsource:\n    product: windows\ndetection:\n    k:\n        - 'sekurlsa::'\n"
                     "    condition: k\n");
    harness_expect_loaded(&h, 1);
    char value[80], json[1024];
    for (size_t len = 10; len <= 70; len++)
        for (int in = 0; in < 3; in++)
            for (int hit = 0; hit < 2; hit++) {
                memset(value, 'x', len - 10);
                memcpy(value + len - 10, hit ? "SEKURLSA::" : "sekurlsa:;", 10);
                value[len] = '\0';
                snprintf(json, sizeof json, KW_EVENT("\"A\":\"%s\",\"B\":\"%s\",\"C\":\"%s\",\"N\":12345,\"L\":[\"a\",\"b\"]"),
                         in == 0 ? value : "short", in == 1 ? value : "sekurlsa:", in == 2 ? value : "x");
                if (harness_fires(&h, json) != (bool)hit) fail_msg("length %zu in field %d: fired %d", len, in, !hit);
            }
    /* an array (no text of its own: its elements are joined) and a number */
    assert_true(harness_fires(&h, KW_EVENT("\"A\":\"short\",\"B\":\"x\",\"C\":\"x\",\"N\":12345,\"L\":[\"a\",\"sekurlsa::\"]")));
    assert_true(harness_fires(&h, KW_EVENT("\"A\":\"short\",\"B\":\"x\",\"C\":\"sekurlsa::\",\"N\":12345,\"L\":[\"a\"]")));

    /* texts placed by hand: at the very end of a page followed by an unmapped one, and a
     * text whose bytes past its end would complete the keyword */
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    static const char *const one[] = {KW_EVENT("\"A\":\"short\",\"B\":\"x\",\"C\":\"x\",\"N\":12345,\"L\":[\"a\"]")};
    events e;
    size_t fired[1];
    for (size_t len = 1; len <= 40; len++) {
        normalize_all(&h, one, 1, &e);
        char *text = map + page - len; /* its last byte is the page's */
        memset(text, 'y', len);
        if (len >= 10) memcpy(text + len - 10, "sekurlsa::", 10);
        field_at(&e.ev[0], "winlog.event_data.B")->text = text;
        field_at(&e.ev[0], "winlog.event_data.B")->text_len = (uint32_t)len;
        eval_batch(&h, &e, fired);
        assert_int_equal(fired[0], len >= 10 ? 1 : 0);
    }
    normalize_all(&h, one, 1, &e);
    static const char tail[] = "xxsekurlsa::"; /* past the 11 bytes given: what completes it */
    field_at(&e.ev[0], "winlog.event_data.C")->text = tail;
    field_at(&e.ev[0], "winlog.event_data.C")->text_len = 11;
    eval_batch(&h, &e, fired);
    assert_int_equal(fired[0], 0);
    field_at(&e.ev[0], "winlog.event_data.C")->text_len = 12;
    eval_batch(&h, &e, fired);
    assert_int_equal(fired[0], 1);
    munmap(map, (size_t)page * 2);
    harness_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_lookalike_in_batch),
        cmocka_unit_test(test_event_data_lookalikes),
        cmocka_unit_test(test_plans_used_and_exact),
        cmocka_unit_test(test_rebind_forgets_plans),
        cmocka_unit_test(test_join_skips_short_values),
        cmocka_unit_test(test_join_skips_value_ending_another),
        cmocka_unit_test(test_join_only_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
