/* tests/unit/detect/test_correlate_seq.c — the correlation engine as search's sequence machine
 * (correlate_sequence_*): a sequence set fires exactly what the same temporal_ordered Sigma
 * correlation fires on the same events, also when matches that can never count (a step whose
 * earlier steps are not held in order inside the window) are not fed, as search does; the
 * prefix question and `until` (drop). */
#include "correlate_helpers.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((rng_state >> 33) % n);
}

/* Feeds one step match to the sequence engine the way search does: a step s >= 1 only when
 * the key holds steps 0..s-1 in order inside the window. */
static void seq_feed(correlate_engine *e, const correlate_set *set, uint32_t step, double t_s, const char *id,
                     const char *key, ch *sink)
{
    int64_t t = BASE_US + (int64_t)(t_s * 1e6);
    if (step && correlate_engine_sequence_prefix(e, key, strlen(key), t) < step) return;
    correlate_match *m = correlate_sequence_match(set, step, t, id, key, strlen(key));
    correlate_engine_feed(e, m, on_alert, sink);
    correlate_match_destroy(m);
}

static void test_sequence_set_fires_what_the_sigma_correlation_fires(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, TEMPORAL_ORDERED_YAML); /* a, b, c in order by (ComputerName, User) within 5m */
    correlate_set *set = correlate_sequence_set_create(3, 300 * 1000000LL);
    assert_int_equal(correlate_set_count(set), 1);
    assert_int_equal(correlate_set_rule(set, 0)->type, CORRELATE_TEMPORAL_ORDERED);
    static ch sink; /* only its alert list is used */
    int total = 0;
    for (int trial = 0; trial < 300; trial++) {
        ch_engine(&h);
        memset(&sink, 0, sizeof sink);
        /* as search runs it: in order, windows checked only at last steps */
        correlate_options opt = {.keys_max = 1000, .events_per_key_max = 1000, .lateness_us = 0, .ordered = true};
        correlate_engine *e = correlate_engine_create(set, &opt);
        int n = 1 + (int)rnd(30);
        double t = 0;
        for (int i = 0; i < n; i++) {
            t += rnd(4) == 0 ? 0 : rnd(150); /* ties too */
            char letter = "abcx"[rnd(4)];
            const char *user = rnd(3) ? "bob" : "eve";
            char label[32], image[2] = {letter, 0}, more[64];
            snprintf(label, sizeof label, "%c%d", letter, i);
            snprintf(more, sizeof more, "\"User\":\"%s\"", user);
            proc(&h, label, t, image, more);
            if (letter != 'x') seq_feed(e, set, (uint32_t)(letter - 'a'), t, label, user, &sink);
        }
        assert_int_equal(sink.count, h.count);
        for (int i = 0; i < h.count; i++) {
            assert_string_equal(sink.alerts[i].ids, h.alerts[i].ids);
            assert_true(sink.alerts[i].event_count == 3);
            assert_true(sink.alerts[i].first_us == h.alerts[i].first_us);
            assert_true(sink.alerts[i].last_us == h.alerts[i].last_us);
            /* the group value is the key given */
            assert_non_null(strstr(h.alerts[i].group, sink.alerts[i].group));
        }
        total += h.count;
        correlate_engine_destroy(e);
    }
    assert_true(total > 50); /* the random runs did produce sequences */
    correlate_set_destroy(set);
    ch_fini(&h);
}

static void test_sequence_prefix_window_and_drop(void **state)
{
    (void)state;
    correlate_set *set = correlate_sequence_set_create(3, 60 * 1000000LL);
    correlate_engine *e = correlate_engine_create(set, NULL);
    static ch sink;
    memset(&sink, 0, sizeof sink);
    assert_int_equal(correlate_engine_sequence_prefix(e, "k", 1, BASE_US), 0);
    seq_feed(e, set, 0, 0, "e0", "k", &sink);
    seq_feed(e, set, 1, 10, "e1", "k", &sink);
    assert_int_equal(correlate_engine_sequence_prefix(e, "k", 1, BASE_US + 20 * 1000000LL), 2);
    assert_int_equal(correlate_engine_sequence_prefix(e, "other", 5, BASE_US + 20 * 1000000LL), 0);
    /* the window ending at 65 s starts after the first step */
    assert_int_equal(correlate_engine_sequence_prefix(e, "k", 1, BASE_US + 65 * 1000000LL), 0);
    /* a step with no prefix is not fed: nothing fires later */
    seq_feed(e, set, 2, 70, "late", "k", &sink);
    assert_int_equal(sink.count, 0);
    /* complete in time: fires once, consumes */
    seq_feed(e, set, 0, 100, "f0", "k", &sink);
    seq_feed(e, set, 1, 110, "f1", "k", &sink);
    seq_feed(e, set, 2, 120, "f2", "k", &sink);
    assert_int_equal(sink.count, 1);
    assert_string_equal(sink.alerts[0].ids, "f0,f1,f2");
    assert_string_equal(sink.alerts[0].group, "k");
    assert_int_equal(correlate_engine_sequence_prefix(e, "k", 1, BASE_US + 121 * 1000000LL), 0);
    /* until: drop forgets the key */
    seq_feed(e, set, 0, 130, "g0", "k", &sink);
    seq_feed(e, set, 1, 131, "g1", "k", &sink);
    correlate_engine_sequence_drop(e, "k", 1);
    correlate_engine_sequence_drop(e, "absent", 6);
    assert_int_equal(correlate_engine_sequence_prefix(e, "k", 1, BASE_US + 132 * 1000000LL), 0);
    seq_feed(e, set, 2, 133, "g2", "k", &sink);
    assert_int_equal(sink.count, 1);
    correlate_stats st;
    correlate_engine_stats(e, 0, &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.alerts, 1);
    /* unbounded span (search without maxspan) */
    correlate_engine_destroy(e);
    correlate_set_destroy(set);
    set = correlate_sequence_set_create(2, 0);
    e = correlate_engine_create(set, NULL);
    seq_feed(e, set, 0, 0, "u0", "k", &sink);
    seq_feed(e, set, 1, 86400.0 * 365, "u1", "k", &sink);
    assert_int_equal(sink.count, 2);
    assert_string_equal(sink.alerts[1].ids, "u0,u1");
    correlate_engine_destroy(e);
    correlate_set_destroy(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequence_set_fires_what_the_sigma_correlation_fires),
        cmocka_unit_test(test_sequence_prefix_window_and_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
