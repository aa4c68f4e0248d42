/* tests/unit/store/test_keys.c — the store's byte layouts: event keys sort by time inside
 * a tenant and day and round-trip; event ids agree with keys; index terms keep value order
 * and escape NULs; posting lists and varints round-trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/clock.h"
#include "store/internal.h"

#include <errno.h>

#include <stdlib.h>
#include <string.h>

#include "test_helpers.h"

static int key_cmp(const uint8_t *a, const uint8_t *b) { return memcmp(a, b, STORE_EVENT_KEY_BYTES); }

static void test_event_key_layout(void **state)
{
    (void)state;
    uint8_t k[STORE_EVENT_KEY_BYTES];
    uint64_t tenant = 0x0102030405060708ull;
    int64_t ts = T_BASE_US + 5 * T_DAY_US + 123;
    store_event_key(k, tenant, ts, 0xAABBCCDDEEFF0011ull, 77, 9);
    assert_int_equal(mamori_get_be64(k), tenant);
    assert_int_equal(mamori_get_be32(k + 8), (uint32_t)clock_day_of_us(ts));
    assert_int_equal((int64_t)mamori_get_be64(k + 12), ts);
    assert_int_equal(mamori_get_be64(k + 20), 0xAABBCCDDEEFF0011ull);
    assert_int_equal(mamori_get_be64(k + 28), 77);
    assert_int_equal(mamori_get_be32(k + 36), 9);

    uint64_t t2;
    uint32_t day;
    store_event_ref ref;
    store_event_key_decode(k, &t2, &day, &ref);
    assert_int_equal(t2, tenant);
    assert_int_equal(day, (uint32_t)clock_day_of_us(ts));
    assert_int_equal(ref.ts_us, ts);
    assert_int_equal(ref.agent_hash, 0xAABBCCDDEEFF0011ull);
    assert_int_equal(ref.seq, 77);
    assert_int_equal(ref.index, 9);
}

static void test_event_key_order(void **state)
{
    (void)state;
    uint8_t a[STORE_EVENT_KEY_BYTES], b[STORE_EVENT_KEY_BYTES];
    /* time order inside a tenant, whatever the agent */
    store_event_key(a, 5, T_BASE_US + 1, UINT64_MAX, UINT64_MAX, UINT32_MAX);
    store_event_key(b, 5, T_BASE_US + 2, 0, 0, 0);
    assert_true(key_cmp(a, b) < 0);
    /* across a day boundary too */
    store_event_key(a, 5, T_BASE_US + T_DAY_US - 1, 9, 9, 9);
    store_event_key(b, 5, T_BASE_US + T_DAY_US, 1, 1, 1);
    assert_true(key_cmp(a, b) < 0);
    assert_true(mamori_get_be32(a + 8) + 1 == mamori_get_be32(b + 8));
    /* tenants never interleave: every key of tenant 5 sorts before any of tenant 6 */
    store_event_key(a, 5, INT64_MAX, UINT64_MAX, UINT64_MAX, UINT32_MAX);
    store_event_key(b, 6, 0, 0, 0, 0);
    assert_true(key_cmp(a, b) < 0);
    /* ties on ts: agent, then seq, then index */
    store_event_key(a, 5, T_BASE_US, 1, 2, 3);
    store_event_key(b, 5, T_BASE_US, 1, 2, 4);
    assert_true(key_cmp(a, b) < 0);
    store_event_key(b, 5, T_BASE_US, 1, 3, 0);
    assert_true(key_cmp(a, b) < 0);
    store_event_key(b, 5, T_BASE_US, 2, 0, 0);
    assert_true(key_cmp(a, b) < 0);
    /* identical input, identical key: resends are idempotent */
    store_event_key(b, 5, T_BASE_US, 1, 2, 3);
    assert_int_equal(key_cmp(a, b), 0);
}

static void test_event_id_matches_key(void **state)
{
    (void)state;
    char id[EVENT_ID_HEX_CHARS + 1];
    int64_t ts = T_BASE_US + 987654321;
    uint64_t agent = event_agent_hash("acme", "host-7");
    event_id_format(ts, agent, 4182, 17, id);
    int64_t pts;
    uint64_t pagent, pseq;
    uint32_t pindex;
    assert_int_equal(event_id_parse(id, strlen(id), &pts, &pagent, &pseq, &pindex), 0);
    uint8_t from_id[STORE_EVENT_KEY_BYTES], direct[STORE_EVENT_KEY_BYTES];
    store_event_key(from_id, event_tenant_hash("acme"), pts, pagent, pseq, pindex);
    store_event_key(direct, event_tenant_hash("acme"), ts, agent, 4182, 17);
    assert_memory_equal(from_id, direct, STORE_EVENT_KEY_BYTES);
    /* the id is the key without tenant and day: same bytes, hex */
    char hex[2 * 28 + 1];
    for (int i = 0; i < 28; i++) snprintf(hex + 2 * i, 3, "%02x", direct[12 + i]);
    assert_string_equal(hex, id);
}

static void term_key(const char *value, size_t len, uint8_t *out, size_t *out_len)
{
    buf scratch;
    buf_init(&scratch);
    ix_term t;
    ix_term_make(&scratch, value, len, &t);
    *out_len = ix_key_encode(out, 1, 2, STORE_IX_FILE_PATH, &t, 100, 1);
    buf_fini(&scratch);
}

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen < blen ? -1 : alen > blen);
}

static void test_index_term_order_and_escape(void **state)
{
    (void)state;
    /* values in byte order (lowercased) give keys in the same order, including NULs and
     * prefixes, so a prefix seek finds exactly the values starting with it */
    static const struct {
        const char *v;
        size_t len;
    } values[] = {
        {"", 0}, {"\0", 1}, {"\0\0", 2}, {"\0a", 2}, {"a", 1}, {"a\0", 2}, {"a\0b", 3}, {"ab", 2}, {"abc", 3}, {"b", 1},
    };
    uint8_t prev[IX_KEY_MAX], cur[IX_KEY_MAX];
    size_t prev_len = 0, cur_len;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        term_key(values[i].v, values[i].len, cur, &cur_len);
        if (i) assert_true(bytes_cmp(prev, prev_len, cur, cur_len) < 0);
        memcpy(prev, cur, cur_len);
        prev_len = cur_len;
    }
    /* caseless: both spellings give the same key */
    uint8_t a[IX_KEY_MAX], b[IX_KEY_MAX];
    size_t alen, blen;
    term_key("C:\\Windows\\PowerShell.EXE", 25, a, &alen);
    term_key("c:\\windows\\powershell.exe", 25, b, &blen);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    /* long values: IX_VALUE_MAX bytes kept plus a hash; different tails, different keys */
    char long1[400], long2[400];
    memset(long1, 'x', sizeof long1);
    memset(long2, 'x', sizeof long2);
    long2[399] = 'y';
    term_key(long1, sizeof long1, a, &alen);
    term_key(long2, sizeof long2, b, &blen);
    assert_int_equal(alen, blen);
    assert_true(alen <= IX_KEY_MAX);
    assert_memory_not_equal(a, b, alen);
    assert_memory_equal(a, b, IX_KEY_PREFIX_BYTES + IX_VALUE_MAX);
}

static void test_varint_roundtrip(void **state)
{
    (void)state;
    uint64_t values[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, (uint64_t)1 << 62, UINT64_MAX};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint8_t b[10];
        size_t n = varint_put(b, values[i]);
        const uint8_t *p = b;
        uint64_t v;
        assert_int_equal(varint_get(&p, b + n, &v), 0);
        assert_int_equal(v, values[i]);
        assert_ptr_equal(p, b + n);
        p = b;
        if (n > 1) assert_int_equal(varint_get(&p, b + n - 1, &v), -EBADMSG);
    }
    int64_t z[] = {0, -1, 1, INT64_MIN, INT64_MAX, -123456789};
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++) assert_int_equal(zigzag_decode(zigzag_encode(z[i])), z[i]);
}

static int ref_cmp_void(const void *a, const void *b) { return store_ref_cmp(a, b); }

static void check_posting_roundtrip(store_event_ref *refs, size_t n, size_t *encoded_len)
{
    ix_encoder enc;
    ix_encoder_init(&enc);
    buf v;
    buf_init(&v);
    ix_posting_encode(&enc, refs, n, &v);
    *encoded_len = v.len;
    ix_cursor c;
    assert_int_equal(ix_cursor_open(&c, (const uint8_t *)v.data, v.len, refs[0].ts_us), 0);
    assert_int_equal(c.max_ts, refs[n - 1].ts_us);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ix_cursor_next(&c), 1);
        assert_true(store_ref_eq(&c.cur, &refs[i]));
    }
    assert_int_equal(ix_cursor_next(&c), 0);
    ix_cursor_close(&c);
    /* a truncated value is reported, never read past */
    for (size_t cut = 1; cut < v.len; cut += 1 + v.len / 50) {
        ix_cursor t;
        if (ix_cursor_open(&t, (const uint8_t *)v.data, cut, refs[0].ts_us) == 0) {
            int rc;
            while ((rc = ix_cursor_next(&t)) == 1) {
            }
            assert_true(rc == -EBADMSG || rc == 0);
            ix_cursor_close(&t);
        }
    }
    buf_fini(&v);
    ix_encoder_fini(&enc);
}

static void test_posting_roundtrip(void **state)
{
    (void)state;
    srand(7);
    enum { N = 20000 };
    store_event_ref *refs = malloc(N * sizeof *refs);
    /* dense list of one host: batches of 200, ts a few ms apart */
    int64_t ts = T_BASE_US;
    for (size_t i = 0; i < N; i++) {
        ts += 1000 + rand() % 4000;
        refs[i] = (store_event_ref){.ts_us = ts, .agent_hash = 0x1234, .seq = 1000 + i / 200, .index = (uint32_t)(i % 200)};
    }
    size_t len;
    check_posting_roundtrip(refs, N, &len);
    print_message("dense single-agent posting: %.2f bytes/entry\n", (double)len / N);
    assert_true(len <= 31 * N / 10 + 64); /* 2-byte ts deltas (ms apart) + 1-byte sel */

    /* many agents interleaved, equal timestamps, seqs going back (re-delivered order) */
    for (size_t i = 0; i < N; i++) {
        refs[i] = (store_event_ref){.ts_us = T_BASE_US + rand() % 100000,
                                    .agent_hash = (uint64_t)(rand() % 1000) * UINT64_C(0x9E3779B97F4A7C15),
                                    .seq = (uint64_t)(rand() % 50 + 1),
                                    .index = (uint32_t)(rand() % 500)};
    }
    qsort(refs, N, sizeof *refs, ref_cmp_void);
    size_t m = 0;
    for (size_t i = 0; i < N; i++)
        if (m == 0 || !store_ref_eq(&refs[m - 1], &refs[i])) refs[m++] = refs[i];
    check_posting_roundtrip(refs, m, &len);
    print_message("1000-agent posting: %.2f bytes/entry\n", (double)len / (double)m);

    /* one entry */
    refs[0] = (store_event_ref){.ts_us = 5, .agent_hash = UINT64_MAX, .seq = UINT64_MAX, .index = UINT32_MAX};
    check_posting_roundtrip(refs, 1, &len);
    free(refs);
}

static void test_index_field_paths(void **state)
{
    (void)state;
    for (int f = 1; f < STORE_IX_FIELD_COUNT_PLUS_ONE; f++) {
        const char *name = store_index_field_name((enum store_index_field)f);
        assert_non_null(name);
        if (f == STORE_IX_PROCESS_HASH) continue;
        assert_int_equal(store_index_field_for_path(name, strlen(name)), f);
    }
    assert_int_equal(store_index_field_for_path("process.hash.sha256", 19), STORE_IX_PROCESS_HASH);
    assert_int_equal(store_index_field_for_path("process.hash.md5", 16), STORE_IX_PROCESS_HASH);
    assert_int_equal(store_index_field_for_path("process.hash.", 13), 0);
    assert_int_equal(store_index_field_for_path("process.parent.name", 19), 0);
    assert_int_equal(store_index_field_for_path("host.ip", 7), 0);
    assert_int_equal(store_index_field_for_path("host.idx", 8), 0);
    assert_null(store_index_field_name(0));
    assert_null(store_index_field_name(STORE_IX_FIELD_COUNT_PLUS_ONE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_key_layout),
        cmocka_unit_test(test_event_key_order),
        cmocka_unit_test(test_event_id_matches_key),
        cmocka_unit_test(test_index_term_order_and_escape),
        cmocka_unit_test(test_varint_roundtrip),
        cmocka_unit_test(test_posting_roundtrip),
        cmocka_unit_test(test_index_field_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
