/* tests/unit/detect/test_correlate_delta.c — incremental checkpoints (correlate_state_delta,
 * header and key records): a delta lists exactly the keys changed since the previous one and
 * the keys removed (a fired sequence empties its key), a model store kept by applying deltas
 * restores into a fresh engine that goes on exactly as the original (same alerts, same ids),
 * bad records are refused without changing the state, and a state replaced by decode makes
 * the next delta a full one. */
#include "correlate_helpers.h"

#define STORE_MAX 64

typedef struct model {
    char key[STORE_MAX][256];
    size_t key_len[STORE_MAX];
    char val[STORE_MAX][4096];
    size_t val_len[STORE_MAX];
    bool used[STORE_MAX];
    int puts, deletes;
} model;

static int find(model *m, const char *key, size_t len)
{
    for (int i = 0; i < STORE_MAX; i++)
        if (m->used[i] && m->key_len[i] == len && !memcmp(m->key[i], key, len)) return i;
    return -1;
}

static void apply(void *ctx, const char *key, size_t key_len, const void *value, size_t value_len)
{
    model *m = ctx;
    assert_true(key_len < 256 && value_len < 4096);
    int i = find(m, key, key_len);
    if (!value) {
        m->deletes++;
        if (i >= 0) m->used[i] = false;
        return;
    }
    m->puts++;
    if (i < 0)
        for (i = 0; i < STORE_MAX && m->used[i]; i++) {
        }
    assert_true(i < STORE_MAX);
    m->used[i] = true;
    memcpy(m->key[i], key, key_len);
    m->key_len[i] = key_len;
    memcpy(m->val[i], value, value_len);
    m->val_len[i] = value_len;
}

static int held(const model *m)
{
    int n = 0;
    for (int i = 0; i < STORE_MAX; i++) n += m->used[i];
    return n;
}

static void step(ch *h, const char *label, double t, char which, const char *user)
{
    char image[2] = {which, 0}, more[64];
    snprintf(more, sizeof more, "\"User\":\"%s\"", user);
    proc(h, label, t, image, more);
}

static void test_delta_lists_what_changed_and_restores(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, TEMPORAL_ORDERED_YAML);
    model m = {0};
    buf scratch;
    buf_init(&scratch);
    const char *users[] = {"u1", "u2", "u3", "u4", "u5"};
    for (int i = 0; i < 5; i++) step(&h, users[i], i, 'a', users[i]);
    assert_false(correlate_state_delta(h.eng, 0, false, &scratch, apply, &m));
    assert_int_equal(m.puts, 5);
    assert_int_equal(held(&m), 5);
    /* nothing changed: an empty delta */
    m.puts = 0;
    assert_false(correlate_state_delta(h.eng, 0, false, &scratch, apply, &m));
    assert_int_equal(m.puts + m.deletes, 0);
    /* u1 advances; u2 completes its sequence (its key empties: removed) */
    step(&h, "u1b", 10, 'b', "u1");
    step(&h, "u2b", 11, 'b', "u2");
    step(&h, "u2c", 12, 'c', "u2");
    assert_int_equal(alerts_emitted(&h), 1);
    assert_false(correlate_state_delta(h.eng, 0, false, &scratch, apply, &m));
    assert_int_equal(m.puts, 1);
    assert_int_equal(m.deletes, 1);
    assert_int_equal(held(&m), 4);

    /* restore from the model into a fresh engine */
    buf hdr;
    buf_init(&hdr);
    correlate_state_header_encode(h.eng, 0, &hdr);
    correlate_engine *restored = correlate_engine_create(h.set, NULL);
    assert_int_equal(correlate_state_header_decode(restored, 0, hdr.data, hdr.len), 0);
    for (int i = 0; i < STORE_MAX; i++)
        if (m.used[i]) assert_int_equal(correlate_state_key_decode(restored, 0, m.val[i], m.val_len[i]), 0);
    correlate_stats a, b;
    correlate_engine_stats(h.eng, 0, &a);
    correlate_engine_stats(restored, 0, &b);
    assert_int_equal(a.keys, b.keys);
    assert_int_equal(a.events, b.events);
    /* a record twice, a truncated one, a header of another correlation: refused, state unchanged */
    int any = 0;
    while (!m.used[any]) any++;
    assert_int_equal(correlate_state_key_decode(restored, 0, m.val[any], m.val_len[any]), -EINVAL);
    assert_int_equal(correlate_state_key_decode(restored, 0, m.val[any], m.val_len[any] - 1), -EINVAL);
    hdr.data[hdr.len - 20] ^= 1; /* the rule count */
    assert_int_equal(correlate_state_header_decode(restored, 0, hdr.data, hdr.len), -EINVAL);
    hdr.data[hdr.len - 20] ^= 1;
    correlate_engine_stats(restored, 0, &b);
    assert_int_equal(a.keys, b.keys);
    assert_int_equal(a.events, b.events);

    /* both engines finish the same sequences with the same alerts */
    correlate_engine *original = h.eng;
    int before = h.count;
    for (int i = 0; i < 5; i++) {
        if (i == 1) continue;
        char label[16];
        snprintf(label, sizeof label, "%sz", users[i]);
        if (i != 0) step(&h, label, 20 + i, 'b', users[i]);
        snprintf(label, sizeof label, "%sc", users[i]);
        step(&h, label, 30 + i, 'c', users[i]);
    }
    int from_original = h.count - before;
    char ids_original[8][33];
    for (int i = 0; i < from_original; i++) memcpy(ids_original[i], h.alerts[before + i].id, 33);
    h.eng = restored;
    h.count = before;
    for (int i = 0; i < 5; i++) {
        if (i == 1) continue;
        char label[16];
        snprintf(label, sizeof label, "%sz", users[i]);
        if (i != 0) step(&h, label, 20 + i, 'b', users[i]);
        snprintf(label, sizeof label, "%sc", users[i]);
        step(&h, label, 30 + i, 'c', users[i]);
    }
    assert_int_equal(from_original, 4);
    assert_int_equal(h.count - before, from_original);
    for (int i = 0; i < from_original; i++) assert_string_equal(h.alerts[before + i].id, ids_original[i]);

    /* a state replaced by decode: the next delta is a full one */
    buf whole;
    buf_init(&whole);
    correlate_state_encode(original, 0, &whole);
    assert_int_equal(correlate_state_decode(restored, 0, whole.data, whole.len), 0);
    model m2 = {0};
    assert_true(correlate_state_delta(restored, 0, false, &scratch, apply, &m2));
    assert_int_equal(m2.deletes, 0);
    assert_false(correlate_state_delta(restored, 0, false, &scratch, apply, &m2));
    buf_fini(&whole);
    correlate_engine_destroy(original);
    buf_fini(&hdr);
    buf_fini(&scratch);
    ch_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delta_lists_what_changed_and_restores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
