/* tests/unit/store/test_index.c — index lookups: every indexed field, caseless, prefix,
 * arrays, time ranges, the in-memory slice visible before it is written and identical
 * results after, K-way merging of overlapping slices, de-duplication, long values, and
 * the write path and the recovery path extracting the same values; the probes (estimate,
 * mark) agreeing with lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/internal.h"

#include <errno.h>
#include <pthread.h>

#include "test_helpers.h"

typedef struct fixture {
    char *dir;
    store_options opt;
    store *s;
    arena a;
    json_parser *p;
} fixture;

static th_refs R1, R2;

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

/* A process event with every indexed field; `i` varies the values. */
static void full_event(fixture *f, uint32_t i, int64_t ts, uint32_t index, mamori_event *out)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"destination\":{\"ip\":\"10.0.0.%u\"},"
             "\"dns\":{\"question\":{\"name\":\"Srv%u.Example.COM\"}},"
             "\"event\":{\"category\":[\"process\",\"network\"],\"type\":[\"start\"]},"
             "\"file\":{\"path\":\"C:\\\\Users\\\\Alice\\\\Doc%u.TXT\"},"
             "\"host\":{\"id\":\"HOST-%u\",\"name\":\"WS-%u\"},"
             "\"process\":{\"entity_id\":\"{PE-%u}\",\"executable\":\"C:\\\\Windows\\\\System32\\\\Cmd%u.exe\","
             "\"hash\":{\"md5\":\"AAAA%u\",\"sha256\":\"BBBB%u\"},\"name\":\"Cmd%u.exe\","
             "\"parent\":{\"entity_id\":\"{PP-%u}\"},\"pid\":%u},"
             "\"source\":{\"ip\":\"192.168.1.%u\"},"
             "\"user\":{\"name\":\"Alice%u\"}}",
             i, i, i, i, i, i, i, i, i, i, i, 1000 + i, i, i);
    th_event(&f->a, f->p, json, ts, index, out);
}

static size_t lookup(fixture *f, th_refs *r, const char *tenant, enum store_index_field field, const char *value,
                     bool prefix, int64_t from, int64_t to)
{
    memset(r, 0, sizeof *r);
    int rc = store_index_lookup(f->s, tenant, field, value, strlen(value), prefix, from, to, th_collect, r);
    assert_int_equal(rc, 0);
    for (size_t i = 1; i < r->n && i < 4096; i++) assert_true(store_ref_cmp(&r->v[i - 1], &r->v[i]) < 0);
    return r->n;
}

static void assert_same(const th_refs *a, const th_refs *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n && i < 4096; i++) assert_true(store_ref_eq(&a->v[i], &b->v[i]));
}

static void test_every_field_before_and_after_flush(void **state)
{
    fixture *f = *state;
    mamori_event ev[4];
    for (uint32_t i = 0; i < 4; i++) full_event(f, i % 2, T_BASE_US + i * 1000, i, &ev[i]);
    store_batch b = th_batch("acme", "host-1", 1, ev, 4);
    store_write_result r;
    assert_int_equal(store_write_group(f->s, &b, 1, &r), 0);

    static const struct {
        enum store_index_field f;
        const char *value; /* matches events 1 and 3 (i == 1), spelled in another case */
    } q[] = {
        {STORE_IX_HOST_ID, "host-1"},
        {STORE_IX_HOST_NAME, "ws-1"},
        {STORE_IX_USER_NAME, "ALICE1"},
        {STORE_IX_PROCESS_ENTITY_ID, "{pe-1}"},
        {STORE_IX_PROCESS_PARENT_ENTITY_ID, "{PP-1}"},
        {STORE_IX_PROCESS_NAME, "CMD1.EXE"},
        {STORE_IX_PROCESS_EXECUTABLE, "c:\\windows\\system32\\cmd1.exe"},
        {STORE_IX_PROCESS_HASH, "aaaa1"},
        {STORE_IX_PROCESS_HASH, "bbbb1"},
        {STORE_IX_SOURCE_IP, "192.168.1.1"},
        {STORE_IX_DESTINATION_IP, "10.0.0.1"},
        {STORE_IX_DNS_QUESTION_NAME, "srv1.example.com"},
        {STORE_IX_FILE_PATH, "c:\\users\\alice\\doc1.txt"},
    };
    static th_refs before[16];
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        size_t n = lookup(f, &before[i], "acme", q[i].f, q[i].value, false, 0, INT64_MAX);
        assert_int_equal(n, 2);
        assert_int_equal(before[i].v[0].index, 1);
        assert_int_equal(before[i].v[1].index, 3);
        assert_int_equal(before[i].v[0].seq, 1);
        assert_int_equal(before[i].v[0].agent_hash, b.agent_hash);
        assert_int_equal(before[i].v[0].ts_us, T_BASE_US + 1000);
    }
    /* arrays: each element indexed; event.category holds both values for all 4 */
    assert_int_equal(lookup(f, &R1, "acme", STORE_IX_EVENT_CATEGORY, "process", false, 0, INT64_MAX), 4);
    assert_int_equal(lookup(f, &R1, "acme", STORE_IX_EVENT_CATEGORY, "NETWORK", false, 0, INT64_MAX), 4);
    assert_int_equal(lookup(f, &R1, "acme", STORE_IX_EVENT_CATEGORY, "start", false, 0, INT64_MAX), 0);
    /* not indexed as the wrong field, nor under another tenant */
    assert_int_equal(lookup(f, &R1, "acme", STORE_IX_HOST_NAME, "host-1", false, 0, INT64_MAX), 0);
    assert_int_equal(lookup(f, &R1, "other", STORE_IX_HOST_ID, "host-1", false, 0, INT64_MAX), 0);
    /* exact means exact: a prefix of a value is no match without prefix mode */
    assert_int_equal(lookup(f, &R1, "acme", STORE_IX_HOST_ID, "host-", false, 0, INT64_MAX), 0);

    store_stats st;
    store_get_stats(f->s, &st);
    assert_true(st.index_entries_pending > 0);
    assert_int_equal(store_flush_index(f->s), 0);
    store_get_stats(f->s, &st);
    assert_int_equal(st.index_entries_pending, 0);
    assert_int_equal(st.index_slices_flushed, 1);
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        lookup(f, &R1, "acme", q[i].f, q[i].value, false, 0, INT64_MAX);
        assert_same(&before[i], &R1);
    }
    /* and after a restart (nothing left in memory at all) */
    store_close(f->s);
    f->s = th_open(&f->opt);
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        lookup(f, &R1, "acme", q[i].f, q[i].value, false, 0, INT64_MAX);
        assert_same(&before[i], &R1);
    }
}

static void test_prefix_and_time_range(void **state)
{
    fixture *f = *state;
    mamori_event ev[12];
    for (uint32_t i = 0; i < 12; i++) full_event(f, i, T_BASE_US + (int64_t)i * T_DAY_US / 4, i, &ev[i]);
    store_batch b[2] = {th_batch("acme", "host-1", 1, ev, 6), th_batch("acme", "host-2", 1, ev + 6, 6)};
    store_write_result r;
    assert_int_equal(store_write_group(f->s, b, 2, &r), 0);
    for (int round = 0; round < 2; round++) {
        /* prefix, caseless: all 12 file paths start with it (3 days of them) */
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_FILE_PATH, "C:\\USERS\\alice\\", true, 0, INT64_MAX), 12);
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_FILE_PATH, "c:\\users\\alice\\doc1", true, 0, INT64_MAX),
                         3); /* doc1, doc10, doc11 */
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_FILE_PATH, "", true, 0, INT64_MAX), 12);
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_FILE_PATH, "d:", true, 0, INT64_MAX), 0);
        /* time range [from, to): 6 hours apart; from inclusive, to exclusive */
        int64_t from = T_BASE_US + T_DAY_US / 4 * 3, to = T_BASE_US + T_DAY_US / 4 * 9;
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_EVENT_CATEGORY, "process", false, from, to), 6);
        assert_int_equal(R1.v[0].ts_us, from);
        assert_int_equal(R1.v[5].ts_us, to - T_DAY_US / 4);
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_FILE_PATH, "c:\\users", true, from, to), 6);
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_EVENT_CATEGORY, "process", false, to, from), 0);
        /* stop early */
        memset(&R1, 0, sizeof R1);
        R1.stop_after = 2;
        assert_int_equal(store_index_lookup(f->s, "acme", STORE_IX_EVENT_CATEGORY, "process", 7, false, 0, INT64_MAX,
                                            th_collect, &R1),
                         0);
        assert_int_equal(R1.n, 2);
        assert_int_equal(store_flush_index(f->s), 0);
    }
}

static void test_merge_overlapping_slices_and_dedup(void **state)
{
    fixture *f = *state;
    /* 8 slices, each holding events from the whole time span (late arrivals), so every
     * slice's posting overlaps every other's: the merge must interleave them */
    enum { SLICES = 8, PER = 300 };
    for (uint32_t sl = 0; sl < SLICES; sl++) {
        mamori_event *ev = arena_alloc(&f->a, PER * sizeof *ev);
        for (uint32_t i = 0; i < PER; i++) {
            char json[128];
            snprintf(json, sizeof json, "{\"host\":{\"id\":\"H\"},\"event\":{\"category\":\"file\"}}");
            th_event(&f->a, f->p, json, T_BASE_US + (int64_t)(i * SLICES + sl) * 10, i, &ev[i]);
        }
        store_batch b = th_batch("acme", "host-1", sl + 1, ev, PER);
        store_write_result r;
        assert_int_equal(store_write_group(f->s, &b, 1, &r), 0);
        if (sl % 2 == 0) assert_int_equal(store_flush_index(f->s), 0); /* leave some in memory */
        arena_reset(&f->a);
    }
    assert_int_equal(lookup(f, &R1, "acme", STORE_IX_HOST_ID, "h", false, 0, INT64_MAX), SLICES * PER);
    for (size_t i = 0; i < SLICES * PER; i++) assert_int_equal(R1.v[i].ts_us, T_BASE_US + (int64_t)i * 10);

    /* The same refs indexed a second time (as if a slice had been written twice, or a
     * lookup saw a slice both in memory and on disk) come out once. */
    ix_slice *dup = ix_slice_create();
    buf scratch;
    buf_init(&scratch);
    for (size_t i = 0; i < 100; i++) {
        uint32_t eno = ix_slice_add_event(dup, &R1.v[i * 7]);
        ix_term t;
        ix_term_make(&scratch, "h", 1, &t);
        uint64_t th = event_tenant_hash("acme");
        uint32_t day = store_day_of_us(R1.v[i * 7].ts_us);
        ix_slice_add_term(dup, eno, th, day, STORE_IX_HOST_ID, &t, ix_term_hash(th, day, STORE_IX_HOST_ID, &t));
    }
    buf_fini(&scratch);
    assert_int_equal(ix_write_slice(f->s, dup), 0);
    ix_slice_destroy(dup);
    assert_int_equal(store_flush_index(f->s), 0);
    lookup(f, &R2, "acme", STORE_IX_HOST_ID, "h", false, 0, INT64_MAX);
    assert_same(&R1, &R2);
}

static th_refs R3;

/* store_index_estimate bounds what a lookup returns (exactly, when every posting lies inside
 * the range); store_index_mark marks exactly the refs of a set a lookup of the term returns,
 * with postings stored and in memory, several agents per posting, time ranges, prefixes. */
static void test_estimate_and_mark_agree_with_lookups(void **state)
{
    fixture *f = *state;
    enum { BATCHES = 6, PER = 150 };
    static const char *hosts[] = {"h1", "h2", "H2", "h3"};
    for (uint32_t b = 0; b < BATCHES; b++) {
        for (uint32_t a = 0; a < 4; a++) {
            mamori_event *ev = arena_alloc(&f->a, PER * sizeof *ev);
            for (uint32_t i = 0; i < PER; i++) {
                char json[160];
                snprintf(json, sizeof json, "{\"event\":{\"category\":\"%s\"},\"host\":{\"id\":\"%s\"}}",
                         (i + a) % 3 ? "file" : "process", hosts[(a + (i % 7 == 0)) % 4]);
                th_event(&f->a, f->p, json, T_BASE_US + (int64_t)(b * PER + i) * 1000 + a, i, &ev[i]);
            }
            char agent[16];
            snprintf(agent, sizeof agent, "agent-%u", a);
            store_batch bt = th_batch("acme", agent, b + 1, ev, PER);
            store_write_result r;
            assert_int_equal(store_write_group(f->s, &bt, 1, &r), 0);
        }
        if (b % 3 != 2 && b < BATCHES - 2) assert_int_equal(store_flush_index(f->s), 0); /* some stay in memory */
        arena_reset(&f->a);
    }
    int64_t span = (int64_t)BATCHES * PER * 1000;
    const int64_t ranges[][2] = {{0, INT64_MAX}, {T_BASE_US + span / 5, T_BASE_US + span / 2},
                                 {T_BASE_US + span * 3 / 4, T_BASE_US + span * 3 / 4 + 7000}};
    static const struct {
        enum store_index_field field;
        const char *value;
        bool prefix;
    } terms[] = {{STORE_IX_HOST_ID, "h2", false}, {STORE_IX_HOST_ID, "h1", false}, {STORE_IX_HOST_ID, "h", true},
                 {STORE_IX_HOST_ID, "nobody", false}, {STORE_IX_EVENT_CATEGORY, "process", false}};
    for (size_t ri = 0; ri < MAMORI_ARRAY_LEN(ranges); ri++) {
        int64_t from = ranges[ri][0], to = ranges[ri][1];
        /* the set: every file event in the range */
        size_t ns = lookup(f, &R1, "acme", STORE_IX_EVENT_CATEGORY, "file", false, from, to);
        assert_true(ns > 0 && ns < 4096);
        for (size_t ti = 0; ti < MAMORI_ARRAY_LEN(terms); ti++) {
            size_t nt = lookup(f, &R2, "acme", terms[ti].field, terms[ti].value, terms[ti].prefix, from, to);
            uint64_t est = 0;
            assert_int_equal(store_index_estimate(f->s, "acme", terms[ti].field, terms[ti].value,
                                                  strlen(terms[ti].value), terms[ti].prefix, from, to, UINT64_MAX, &est),
                             0);
            assert_true(est >= nt);
            if (ri == 0) assert_int_equal(est, nt);
            bool hit[4096];
            memset(hit, 0, sizeof hit);
            assert_int_equal(store_index_mark(f->s, "acme", terms[ti].field, terms[ti].value, strlen(terms[ti].value),
                                              terms[ti].prefix, from, to, R1.v, ns, hit),
                             0);
            /* expected: the set intersected with the lookup */
            size_t j = 0, both = 0;
            for (size_t i = 0; i < ns; i++) {
                while (j < nt && store_ref_cmp(&R2.v[j], &R1.v[i]) < 0) j++;
                bool want = j < nt && store_ref_eq(&R2.v[j], &R1.v[i]);
                assert_int_equal(hit[i], want);
                both += want;
            }
            if (ri == 0 && terms[ti].value[0] == 'h' && strcmp(terms[ti].value, "nobody") != 0) assert_true(both > 0);
        }
    }
    /* a set of one agent's refs skips other agents' postings and still marks exactly */
    size_t n1 = lookup(f, &R3, "acme", STORE_IX_HOST_ID, "h3", false, 0, INT64_MAX);
    assert_true(n1 > 0 && n1 < 4096);
    bool hit[4096];
    memset(hit, 0, sizeof hit);
    assert_int_equal(store_index_mark(f->s, "acme", STORE_IX_EVENT_CATEGORY, "process", 7, false, 0, INT64_MAX, R3.v, n1,
                                      hit),
                     0);
    size_t np = lookup(f, &R2, "acme", STORE_IX_EVENT_CATEGORY, "process", false, 0, INT64_MAX);
    for (size_t i = 0, j = 0; i < n1; i++) {
        while (j < np && store_ref_cmp(&R2.v[j], &R3.v[i]) < 0) j++;
        assert_int_equal(hit[i], j < np && store_ref_eq(&R2.v[j], &R3.v[i]));
    }
}

static void test_long_values(void **state)
{
    fixture *f = *state;
    /* paths longer than the IX_VALUE_MAX bytes an index key keeps */
    char a[400], b[400], json[1024];
    memset(a, 'a', 300);
    a[300] = '\0';
    memcpy(b, a, 301);
    b[299] = 'B';
    b[250] = 'X'; /* differs after the kept bytes */
    mamori_event ev[3];
    snprintf(json, sizeof json, "{\"file\":{\"path\":\"%s\"}}", a);
    th_event(&f->a, f->p, json, T_BASE_US, 0, &ev[0]);
    snprintf(json, sizeof json, "{\"file\":{\"path\":\"%s\"}}", b);
    th_event(&f->a, f->p, json, T_BASE_US + 1, 1, &ev[1]);
    snprintf(json, sizeof json, "{\"file\":{\"path\":\"%.150s\"}}", a); /* short, same start */
    th_event(&f->a, f->p, json, T_BASE_US + 2, 2, &ev[2]);
    store_batch bt = th_batch("acme", "host-1", 1, ev, 3);
    store_write_result r;
    assert_int_equal(store_write_group(f->s, &bt, 1, &r), 0);
    char pfx_long[400];
    memcpy(pfx_long, a, 260);
    pfx_long[260] = '\0';
    for (int round = 0; round < 2; round++) {
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_FILE_PATH, a, false, 0, INT64_MAX), 1);
        assert_int_equal(R1.v[0].index, 0);
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_FILE_PATH, b, false, 0, INT64_MAX), 1);
        assert_int_equal(R1.v[0].index, 1);
        /* prefix within the kept bytes: all three */
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_FILE_PATH, "aaaaaaaaaa", true, 0, INT64_MAX), 3);
        /* a prefix longer than the kept bytes: re-checked against the stored events */
        assert_int_equal(lookup(f, &R1, "acme", STORE_IX_FILE_PATH, pfx_long, true, 0, INT64_MAX), 1);
        assert_int_equal(R1.v[0].index, 0);
        assert_int_equal(store_flush_index(f->s), 0);
    }
}

typedef struct seen {
    char v[64][256];
    enum store_index_field f[64];
    size_t n;
} seen;

static void record(void *ctx, enum store_index_field fld, const char *value, size_t len)
{
    seen *s = ctx;
    assert_true(s->n < 64 && len < 256);
    memcpy(s->v[s->n], value, len);
    s->v[s->n][len] = '\0';
    s->f[s->n++] = fld;
}

static int seen_has(const seen *s, enum store_index_field fld, const char *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->f[i] == fld && strcmp(s->v[i], v) == 0) return 1;
    return 0;
}

static void test_write_path_and_recovery_extract_the_same(void **state)
{
    fixture *f = *state;
    mamori_event ev;
    const char *json = "{\"event\":{\"category\":[\"process\",\"file\",7,true,null,{\"x\":1}]},"
                       "\"host\":{\"id\":\"H\",\"name\":\"N\"},\"user\":{\"name\":\"U\"},"
                       "\"process\":{\"hash\":{\"md5\":\"M\",\"sha1\":\"S1\",\"deep\":{\"x\":\"no\"}},"
                       "\"name\":\"P\",\"pid\":5,\"parent\":{\"entity_id\":\"PE\",\"name\":\"no\"}},"
                       "\"source\":{\"ip\":\"1.2.3.4\",\"port\":80},\"destination\":{\"ip\":[\"5.6.7.8\",\"9.9.9.9\"]},"
                       "\"file\":{\"path\":\"/tmp/x\",\"name\":\"x\"},\"dns\":{\"question\":{\"name\":\"d.com\"}}}";
    th_event(&f->a, f->p, json, T_BASE_US, 0, &ev);
    seen from_fields = {0}, from_json = {0};
    ix_extract_event(&ev, record, &from_fields);
    json_value root;
    json_error jerr;
    assert_int_equal(json_parse(f->p, &f->a, ev.json, ev.json_len, &root, &jerr), 0);
    ix_extract_json(&root, record, &from_json);
    assert_int_equal(from_fields.n, from_json.n);
    for (size_t i = 0; i < from_fields.n; i++) assert_true(seen_has(&from_json, from_fields.f[i], from_fields.v[i]));
    assert_int_equal(from_fields.n, 15);
    assert_true(seen_has(&from_fields, STORE_IX_EVENT_CATEGORY, "7"));
    assert_true(seen_has(&from_fields, STORE_IX_PROCESS_HASH, "S1"));
    assert_true(seen_has(&from_fields, STORE_IX_DESTINATION_IP, "9.9.9.9"));
    assert_false(seen_has(&from_fields, STORE_IX_PROCESS_HASH, "no"));
}

/* Lookups running while groups are written and slices closed by the timer: every lookup
 * sees a consistent, ascending, duplicate-free prefix of what was written, and nothing
 * once committed disappears (the sanitizer builds check the locking). */
typedef struct writer_arg {
    fixture *f;
    int groups;
    volatile int done;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *w = p;
    arena a;
    arena_init(&a, 1 << 16);
    json_parser *jp = json_parser_create();
    for (int g = 0; g < w->groups; g++) {
        mamori_event *ev = arena_alloc(&a, 50 * sizeof *ev);
        for (int i = 0; i < 50; i++)
            th_event(&a, jp, "{\"host\":{\"id\":\"H\"}}", T_BASE_US + (int64_t)(g * 50 + i) * 1000, (uint32_t)i, &ev[i]);
        store_batch b = th_batch("acme", "host-1", (uint64_t)g + 1, ev, 50);
        store_write_result r;
        if (store_write_group(w->f->s, &b, 1, &r)) abort();
        arena_reset(&a);
    }
    json_parser_destroy(jp);
    arena_fini(&a);
    w->done = 1;
    return NULL;
}

static void test_lookups_while_writing(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    f->opt.index_slice_ms = 3; /* slices close and get written all the time */
    f->s = th_open(&f->opt);
    writer_arg w = {.f = f, .groups = 60};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
    size_t last = 0;
    while (!w.done) {
        size_t n = lookup(f, &R1, "acme", STORE_IX_HOST_ID, "h", false, 0, INT64_MAX);
        assert_true(n >= last); /* never loses what a previous lookup saw */
        assert_true(n % 50 == 0); /* a group is indexed whole or not at all */
        last = n;
    }
    pthread_join(t, NULL);
    assert_int_equal(lookup(f, &R1, "acme", STORE_IX_HOST_ID, "h", false, 0, INT64_MAX), 60 * 50);
    assert_int_equal(store_flush_index(f->s), 0);
    assert_int_equal(lookup(f, &R1, "acme", STORE_IX_HOST_ID, "h", false, 0, INT64_MAX), 60 * 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_field_before_and_after_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_time_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_overlapping_slices_and_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_estimate_and_mark_agree_with_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_path_and_recovery_extract_the_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookups_while_writing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
