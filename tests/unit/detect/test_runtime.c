/* tests/unit/detect/test_runtime.c — the runtime shape: the rule set is an immutable,
 * refcounted snapshot swapped through a slot while reader threads keep evaluating with their
 * own workers (no reader ever sees a freed rule set: run under ASan); a worker rebinds to a
 * new snapshot; matches come out once each, in rule order; and detect_eval never calls
 * malloc (counted by interposing the allocator in non-sanitizer builds). */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#ifndef MAMORI_SANITIZED
/* Count allocations while `counting` is set; everything else goes to glibc. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
static _Thread_local bool counting;
static atomic_ulong allocations;
void *malloc(size_t n)
{
    if (counting) atomic_fetch_add(&allocations, 1);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m)
{
    if (counting) atomic_fetch_add(&allocations, 1);
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n)
{
    if (counting) atomic_fetch_add(&allocations, 1);
    return __libc_realloc(p, n);
}
#endif

static detect_ruleset *build(const char *yaml)
{
    detect_loader *l = detect_loader_create(NULL);
    detect_loader_add_text(l, "rt.yml", yaml, strlen(yaml));
    detect_ruleset *rs;
    char err[256];
    assert_int_equal(detect_loader_build(l, &rs, err, sizeof err), 0);
    detect_loader_destroy(l); /* the rule set outlives its loader */
    return rs;
}

static const char *rules_ab = "title: A\nid: A\nlogsource:\n    category: process_creation\n    product: windows\n"
                              "detection:\n    sel:\n        CommandLine|contains: 'alpha'\n    condition: sel\n---\n"
                              "title: B\nid: B\nlogsource:\n    category: process_creation\n    product: windows\n"
                              "detection:\n    sel:\n        CommandLine|contains: 'alpha'\n    filter:\n        User: x\n"
                              "    condition: sel and not filter\n---\n"
                              "title: C\nid: C\nlogsource:\n    category: process_creation\n    product: windows\n"
                              "detection:\n    sel:\n        CommandLine|contains:\n            - 'alp'\n            - 'pha'\n"
                              "    condition: sel\n---\n"
                              "title: N\nid: N\nlogsource:\n    category: process_creation\n    product: windows\n"
                              "detection:\n    filter:\n        User: nobody\n    condition: not filter\n";

static const char *rules_z = "title: Z\nid: Z\nlogsource:\n    category: process_creation\n    product: windows\n"
                             "detection:\n    sel:\n        CommandLine|contains: 'alpha'\n    condition: sel\n";

struct fixture {
    json_parser *parser;
    normalizer *norm;
    arena mem;
    mamori_event ev;
};

static void fixture_event(struct fixture *f, const char *cmd)
{
    f->parser = json_parser_create();
    f->norm = normalizer_create();
    arena_init(&f->mem, 16384);
    char *json = arena_alloc(&f->mem, 512); /* the DOM points into the text: keep it */
    snprintf(json, 512,
             "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
             "\"EventData\":{\"CommandLine\":\"%s\",\"User\":\"bob\"}}}",
             cmd);
    json_value *v = arena_alloc(&f->mem, sizeof *v);
    json_error err;
    assert_int_equal(json_parse(f->parser, &f->mem, json, strlen(json), v, &err), 0);
    event_stamp stamp = {.tenant = "t", .agent_id = "a", .agent_hash = 1, .seq = 1, .received_us = 1714566896000000LL};
    char why[128];
    assert_int_equal(normalize_event(f->norm, &f->mem, EVENT_FORMAT_AUTO, v, &stamp, 0, &f->ev, why, sizeof why), 0);
}

static void fixture_fini(struct fixture *f)
{
    arena_fini(&f->mem);
    normalizer_destroy(f->norm);
    json_parser_destroy(f->parser);
}

static void test_matches_once_in_order(void **state)
{
    (void)state;
    detect_ruleset *rs = build(rules_ab);
    assert_int_equal(detect_ruleset_rule_count(rs), 4);
    detect_worker *w = detect_worker_create();
    assert_int_equal(detect_worker_bind(w, rs), 0);
    struct fixture f;
    fixture_event(&f, "alpha alpha alpha");
    const detect_match *m;
    size_t n = detect_eval(w, &f.ev, &m);
    assert_int_equal(n, 4);
    assert_string_equal(m[0].rule->id, "A");
    assert_string_equal(m[1].rule->id, "B");
    assert_string_equal(m[2].rule->id, "C");
    assert_string_equal(m[3].rule->id, "N"); /* needs no pattern at all */
    /* evaluating again gives the same answer: no state leaks between events */
    assert_int_equal(detect_eval(w, &f.ev, &m), 4);
    detect_worker_stats st;
    detect_worker_stats_get(w, &st);
    assert_int_equal(st.events, 2);
    assert_int_equal(st.matches, 8);
    fixture_fini(&f);
    detect_worker_destroy(w);
    detect_ruleset_unref(rs);
}

static void test_rebind_and_refcount(void **state)
{
    (void)state;
    detect_ruleset *a = build(rules_ab), *z = build(rules_z);
    assert_true(detect_ruleset_generation(a) != detect_ruleset_generation(z));
    detect_slot *slot = detect_slot_create();
    assert_null(detect_slot_get(slot));
    detect_slot_set(slot, a); /* the slot takes our reference */
    detect_ruleset *reader = detect_slot_get(slot);
    assert_ptr_equal(reader, a);
    detect_worker *w = detect_worker_create();
    assert_int_equal(detect_worker_bind(w, reader), 0);
    detect_slot_set(slot, z); /* a reload: the reader and the worker still hold a */
    struct fixture f;
    fixture_event(&f, "alpha");
    const detect_match *m;
    assert_int_equal(detect_eval(w, &f.ev, &m), 4);
    assert_string_equal(m[0].rule->title, "A");
    detect_ruleset_unref(reader);
    detect_ruleset *next = detect_slot_get(slot);
    assert_int_equal(detect_worker_bind(w, next), 0); /* drops the worker's ref: a is freed now */
    assert_int_equal(detect_eval(w, &f.ev, &m), 1);
    assert_string_equal(m[0].rule->id, "Z");
    assert_int_equal(detect_worker_bind(w, next), 0); /* same snapshot: a no-op */
    detect_ruleset_unref(next);
    fixture_fini(&f);
    detect_worker_destroy(w);
    detect_slot_destroy(slot);
}

struct reader_arg {
    detect_slot *slot;
    atomic_bool *stop;
    atomic_ulong evaluated;
};

static void *reader(void *p)
{
    struct reader_arg *arg = p;
    struct fixture f;
    fixture_event(&f, "alpha beta");
    detect_worker *w = detect_worker_create();
    while (!atomic_load(arg->stop)) {
        detect_ruleset *rs = detect_slot_get(arg->slot); /* once per "batch" */
        if (detect_worker_bind(w, rs) != 0) abort();
        for (int i = 0; i < 50; i++) {
            const detect_match *m;
            size_t n = detect_eval(w, &f.ev, &m);
            if (n == 0 || strlen(m[0].rule->title) != 1) abort();
            atomic_fetch_add(&arg->evaluated, 1);
        }
        detect_ruleset_unref(rs);
    }
    detect_worker_destroy(w);
    fixture_fini(&f);
    return NULL;
}

static void test_swap_under_readers(void **state)
{
    (void)state;
    detect_slot *slot = detect_slot_create();
    detect_slot_set(slot, build(rules_ab));
    atomic_bool stop = false;
    enum { READERS = 3 };
    pthread_t threads[READERS];
    struct reader_arg args[READERS];
    for (int i = 0; i < READERS; i++) {
        args[i].slot = slot;
        args[i].stop = &stop;
        atomic_init(&args[i].evaluated, 0);
        assert_int_equal(pthread_create(&threads[i], NULL, reader, &args[i]), 0);
    }
    /* the swaps must happen while every reader is evaluating: on a busy machine a thread may
     * not run at all before 12 swaps are done (the test then proved nothing and failed) */
    for (int i = 0; i < READERS; i++)
        for (int w = 0; w < 30000 && atomic_load(&args[i].evaluated) == 0; w++) usleep(1000);
    for (int k = 0; k < 12; k++) detect_slot_set(slot, build(k % 2 ? rules_ab : rules_z));
    atomic_store(&stop, true);
    for (int i = 0; i < READERS; i++) {
        pthread_join(threads[i], NULL);
        assert_true(atomic_load(&args[i].evaluated) > 0);
    }
    detect_slot_destroy(slot);
}

/* The two rules above plus a keyword rule ('alpha' anywhere): five matches on "alpha beta gamma". */
static void harness_init_keyword(harness *h)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "%s---\ntitle: K\nid: K\nlogsource:\n    product: windows\ndetection:\n    k:\n        - 'alpha'\n"
             "    condition: k\n",
             rules_ab);
    harness_init(h, yaml);
}

static void test_eval_does_not_allocate(void **state)
{
    (void)state;
#ifdef MAMORI_SANITIZED
    skip();
#else
    /* the keyword rule too: the joined-values scan must not allocate either */
    harness h;
    harness_init_keyword(&h);
    struct fixture f;
    fixture_event(&f, "alpha beta gamma");
    const detect_match *m;
    assert_int_equal(detect_eval(h.worker, &f.ev, &m), 5); /* warm */
    atomic_store(&allocations, 0);
    counting = true;
    size_t total = 0;
    for (int i = 0; i < 1000; i++) total += detect_eval(h.worker, &f.ev, &m);
    counting = false;
    assert_int_equal(total, 5000);
    assert_int_equal(atomic_load(&allocations), 0);
    fixture_fini(&f);
    harness_fini(&h);
#endif
}

/* An event built by hand (fields with path and value only, no text, type or path hash, as
 * tests and tools make them) takes the scan's fallback path and must match exactly as the
 * normalized event does. */
static void test_hand_built_event_equals_normalized(void **state)
{
    (void)state;
    harness h;
    harness_init_keyword(&h);
    struct fixture f;
    fixture_event(&f, "alpha beta gamma");
    assert_true(f.ev.field_count > 0 && f.ev.fields[0].path_hash != 0); /* normalized: filled in */
    event_field *bare = arena_alloc(&f.mem, f.ev.field_count * sizeof *bare);
    for (uint32_t i = 0; i < f.ev.field_count; i++)
        bare[i] = (event_field){.path = f.ev.fields[i].path, .path_len = f.ev.fields[i].path_len,
                                .value = f.ev.fields[i].value};
    mamori_event hand = f.ev;
    hand.fields = bare;
    const detect_match *m;
    size_t n = detect_eval(h.worker, &f.ev, &m);
    assert_int_equal(n, 5);
    const detect_rule *want[8];
    for (size_t i = 0; i < n; i++) want[i] = m[i].rule;
    assert_int_equal(detect_eval(h.worker, &hand, &m), n);
    for (size_t i = 0; i < n; i++) assert_ptr_equal(m[i].rule, want[i]);
    fixture_fini(&f);
    harness_fini(&h);
}

struct collected {
    size_t event[64];
    const char *rule[64];
    size_t n;
};

static void collect(void *ctx, size_t event_index, const detect_rule *rule)
{
    struct collected *c = ctx;
    assert_true(c->n < 64);
    c->event[c->n] = event_index;
    c->rule[c->n] = rule->id;
    c->n++;
}

/* A batch gives exactly the matches of evaluating its events one by one, in event order. */
static void test_batch_equals_single(void **state)
{
    (void)state;
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "%s---\ntitle: K\nid: K\nlogsource:\n    product: windows\ndetection:\n    k:\n        - 'gamma'\n"
             "    condition: k\n",
             rules_ab);
    harness h;
    harness_init(&h, yaml);
    const char *cmds[] = {"alpha", "nothing", "gamma alpha", "pha only", "gamma"};
    enum { N = 5 };
    struct fixture f[N];
    mamori_event evs[N];
    for (int i = 0; i < N; i++) {
        fixture_event(&f[i], cmds[i]);
        evs[i] = f[i].ev;
    }
    struct collected single = {.n = 0}, batch = {.n = 0};
    for (size_t i = 0; i < N; i++) {
        const detect_match *m;
        size_t n = detect_eval(h.worker, &evs[i], &m);
        for (size_t k = 0; k < n; k++) collect(&single, i, m[k].rule);
    }
    size_t total = detect_eval_batch(h.worker, evs, N, collect, &batch);
    assert_int_equal(total, batch.n);
    assert_int_equal(single.n, batch.n);
    assert_true(batch.n >= 8);
    for (size_t i = 0; i < batch.n; i++) {
        assert_int_equal(single.event[i], batch.event[i]);
        assert_string_equal(single.rule[i], batch.rule[i]);
    }
    /* a warm worker (no value prefetching, as mamorictl scan) reports the same */
    detect_worker_set_warm(h.worker, true);
    struct collected warm = {.n = 0};
    assert_int_equal(detect_eval_batch(h.worker, evs, N, collect, &warm), batch.n);
    for (size_t i = 0; i < batch.n; i++) {
        assert_int_equal(warm.event[i], batch.event[i]);
        assert_string_equal(warm.rule[i], batch.rule[i]);
    }
    detect_worker_set_warm(h.worker, false);
    /* more events than one internal chunk */
    static mamori_event many[600];
    for (size_t i = 0; i < 600; i++) many[i] = evs[i % N];
    size_t expect = 0;
    for (size_t i = 0; i < 600; i++) {
        const detect_match *m;
        expect += detect_eval(h.worker, &many[i], &m);
    }
    struct collected sink = {.n = 0};
    (void)sink;
    size_t got = 0;
    for (size_t i = 0; i < 600; i += 5) {
        struct collected c = {.n = 0};
        got += detect_eval_batch(h.worker, many + i, 5, collect, &c);
    }
    assert_int_equal(got, expect);
    for (int i = 0; i < N; i++) fixture_fini(&f[i]);
    harness_fini(&h);
}

static void count_only(void *ctx, size_t event_index, const detect_rule *rule)
{
    (void)event_index;
    (void)rule;
    (*(size_t *)ctx)++;
}

static void test_batch_chunks(void **state)
{
    (void)state;
    harness h;
    harness_init(&h, rules_ab);
    struct fixture f;
    fixture_event(&f, "alpha");
    static mamori_event many[700];
    for (size_t i = 0; i < 700; i++) many[i] = f.ev;
    size_t n = 0;
    assert_int_equal(detect_eval_batch(h.worker, many, 700, count_only, &n), 700 * 4);
    assert_int_equal(n, 700 * 4);
    fixture_fini(&f);
    harness_fini(&h);
}

/* One worker, events whose fields move around: a lazily scanned field at another index, a
 * null check for a field present, absent between other neighbours, or absent where a path of
 * the same length was (eval.c path_get remembers where each path was last seen). */
static void test_changing_event_shapes(void **state)
{
    (void)state;
    const char *yaml = "title: t\nid: r1\nlogsource:\n    category: process_creation\n    product: windows\n"
                       "detection:\n    selection:\n        Image|endswith: '\\a.exe'\n"
                       "    filter:\n        Custom|contains: 'safe'\n"
                       "    filter_cmd:\n        CommandLine|contains: 'skip'\n"
                       "    nul:\n        Other: null\n"
                       "    condition: selection and not 1 of filter* and nul\n";
    static const struct {
        const char *event_data;
        bool fires;
    } cases[] = {
        {"\"Image\":\"C:\\\\a.exe\",\"Custom\":\"run\"", true},
        {"\"Image\":\"C:\\\\a.exe\",\"AAA1\":\"1\",\"AAA2\":\"2\",\"Custom\":\"safe\"", false},
        {"\"Image\":\"C:\\\\a.exe\",\"Custom\":\"run\",\"Other\":\"o\"", false},
        {"\"Image\":\"C:\\\\a.exe\",\"Other\":\"o\",\"AAA1\":\"1\"", false},
        {"\"Image\":\"C:\\\\a.exe\",\"AAA1\":\"1\",\"Custom\":\"run\"", true},
        {"\"Image\":\"C:\\\\a.exe\",\"Cust0m\":\"safe\"", true},
        {"\"Image\":\"C:\\\\a.exe\",\"Custom\":\"SAFE\",\"Zzz\":\"z\",\"Other\":null", false},
        {"\"Image\":\"C:\\\\a.exe\",\"Custom\":\"ok\",\"Other\":null", true},
        {"\"Image\":\"C:\\\\a.exe\"", true},
        {"\"Image\":\"C:\\\\a.exe\",\"Custom\":\"safe\"", false},
        {"\"Image\":\"C:\\\\a.exe\",\"CommandLine\":\"skip it\",\"Custom\":\"run\"", false},
        {"\"Image\":\"C:\\\\a.exe\",\"AAA1\":\"1\",\"CommandLine\":\"run\",\"Custom\":\"run\"", true},
        {"\"Image\":\"C:\\\\a.exe\",\"Other\":\"o\",\"Otheq\":null,\"Othez\":null", false},
        {"\"Image\":\"C:\\\\a.exe\",\"Otheq\":null,\"Othez\":null", true},
        {"\"Image\":\"C:\\\\b.exe\",\"Custom\":\"run\"", false},
        {"\"Image\":\"C:\\\\a.exe\",\"Custom\":\"run\"", true},
    };
    harness h;
    harness_init(&h, yaml);
    harness_expect_loaded(&h, 1);
    char json[1024];
    for (int round = 0; round < 3; round++) /* each shape after each other shape */
        for (size_t i = 0; i < MAMORI_ARRAY_LEN(cases); i++) {
            size_t k = (i * (size_t)(round + 1)) % MAMORI_ARRAY_LEN(cases);
            snprintf(json, sizeof json,
                     "{\"Event\":{\"System\":{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1},"
                     "\"EventData\":{%s}}}",
                     cases[k].event_data);
            if (harness_fires(&h, json) != cases[k].fires) fail_msg("case %zu (round %d): %s", k, round, cases[k].event_data);
            /* between them, events of other shapes: winlog.channel and winlog.event_id move
             * (another channel, more System fields) or are missing (ECS) */
            if (k % 3 == 0)
                assert_false(harness_fires(&h, "{\"Event\":{\"System\":{\"Channel\":\"Security\",\"EventID\":4624,"
                                               "\"Computer\":\"dc1\",\"EventRecordID\":7},\"EventData\":{\"AAA\":\"1\","
                                               "\"Image\":\"C:\\\\a.exe\"}}}"));
            if (k % 3 == 1)
                assert_true(harness_fires(&h, "{\"@timestamp\":\"2024-05-01T12:00:00Z\",\"event\":{\"category\":[\"process\"],"
                                              "\"type\":[\"start\"]},\"host\":{\"os\":{\"type\":\"windows\"}},"
                                              "\"process\":{\"executable\":\"C:\\\\a.exe\"}}"));
        }
    harness_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_once_in_order),
        cmocka_unit_test(test_rebind_and_refcount),
        cmocka_unit_test(test_swap_under_readers),
        cmocka_unit_test(test_eval_does_not_allocate),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_hand_built_event_equals_normalized),
        cmocka_unit_test(test_batch_chunks),
        cmocka_unit_test(test_changing_event_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
