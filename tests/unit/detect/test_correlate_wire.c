/* tests/unit/detect/test_correlate_wire.c — base matches on the wire (correlate_wire.c, the
 * mamori.matches message of docs/detection.md §11.8): every target of every match encoded,
 * decoded against the set and fed to a second engine gives the same alerts, same ids, as
 * feeding the matches themselves; every truncation and a changed byte of the header are
 * rejected; a correlation the receiver does not have is -ENOENT; host-keyed correlations are
 * told apart from the ones that need re-keying. */
#include "correlate_helpers.h"

#define SPRAY_YAML \
    "title: Password spraying\nid: 2a0b8d0e-5d0a-4d44-9d8e-6f2f1a7d9a11\ncorrelation:\n    type: value_count\n" \
    "    rules:\n        - failed_login\n    group-by:\n        - IpAddress\n    timespan: 5m\n" \
    "    condition:\n        field: User\n        gte: 3\n---\n" CHAIN_YAML

typedef struct ids {
    char v[64][33];
    int n;
} ids;

static void record(void *ctx, const correlate_alert *a)
{
    ids *x = ctx;
    assert_true(x->n < 64);
    correlate_alert_id(a, x->v[x->n++]);
}

typedef struct wire_run {
    ch h;
    correlate_engine *direct, *via_wire;
    ids a, b;
    size_t messages;
    buf last; /* the last message, for the corruption test */
} wire_run;

static void send_event(wire_run *w, const char *label, double t_s, int event_id, const char *user, const char *ip)
{
    ch *h = &w->h;
    char ts[64], json[1024];
    clock_format_rfc3339(BASE_US + (int64_t)(t_s * 1e6), ts);
    snprintf(json, sizeof json,
             "{\"Event\":{\"System\":{\"Channel\":\"Security\",\"EventID\":%d,\"Computer\":\"ws1\","
             "\"TimeCreated\":{\"#attributes\":{\"SystemTime\":\"%s\"}}},\"EventData\":{\"User\":\"%s\","
             "\"IpAddress\":\"%s\"}}}",
             event_id, ts, user, ip);
    arena_reset(&h->mem);
    json_value v;
    json_error jerr;
    assert_int_equal(json_parse(h->parser, &h->mem, json, strlen(json), &v, &jerr), 0);
    event_stamp stamp = {.tenant = "t", .agent_id = "a", .agent_hash = 1, .seq = 1, .received_us = BASE_US};
    mamori_event ev;
    char why[128];
    assert_int_equal(normalize_event(h->norm, &h->mem, EVENT_FORMAT_AUTO, &v, &stamp, 0, &ev, why, sizeof why), 0);
    const detect_match *m;
    size_t n = detect_eval(h->worker, &ev, &m);
    for (size_t i = 0; i < n; i++) {
        correlate_match *cm = correlate_match_create(h->set, m[i].rule, &ev, ev.ts_us, label);
        if (!cm) continue;
        correlate_engine_feed(w->direct, cm, record, &w->a);
        for (size_t t = 0; t < correlate_match_target_count(cm); t++) {
            buf_clear(&w->last);
            correlate_match_encode(h->set, cm, t, &w->last);
            correlate_match *back = NULL;
            assert_int_equal(correlate_match_decode(h->set, w->last.data, w->last.len, &back), 0);
            assert_int_equal(correlate_match_target_count(back), 1);
            const char *k1, *k2;
            size_t l1, l2;
            assert_ptr_equal(correlate_match_target(h->set, cm, t, &k1, &l1),
                             correlate_match_target(h->set, back, 0, &k2, &l2));
            assert_int_equal(l1, l2);
            if (l1) assert_memory_equal(k1, k2, l1);
            correlate_engine_feed(w->via_wire, back, record, &w->b);
            correlate_match_destroy(back);
            w->messages++;
        }
        correlate_match_destroy(cm);
    }
}

static void test_wire_round_trip_gives_the_same_alerts(void **state)
{
    (void)state;
    wire_run w = {0};
    ch_init(&w.h, SPRAY_YAML);
    w.direct = correlate_engine_create(w.h.set, NULL);
    w.via_wire = correlate_engine_create(w.h.set, NULL);
    buf_init(&w.last);
    char label[32];
    for (int i = 0; i < 12; i++) { /* bob fails 12 times from 3 addresses, then succeeds */
        snprintf(label, sizeof label, "f%d", i);
        send_event(&w, label, i, 4625, "bob", i % 3 == 0 ? "10.0.0.1" : i % 3 == 1 ? "10.0.0.2" : "10.0.0.3");
    }
    send_event(&w, "ok", 20, 4624, "bob", "10.0.0.1");
    for (int i = 0; i < 3; i++) { /* one address, three users: spraying */
        snprintf(label, sizeof label, "s%d", i);
        send_event(&w, label, 30 + i, 4625, i == 0 ? "u1" : i == 1 ? "u2" : "u3", "10.9.9.9");
    }
    /* failed_login feeds two correlations: two messages per failed logon */
    assert_int_equal(w.messages, 15 * 2 + 1);
    assert_true(w.a.n >= 3); /* event_count, the ordered chain, spraying */
    assert_int_equal(w.a.n, w.b.n);
    for (int i = 0; i < w.a.n; i++) assert_string_equal(w.a.v[i], w.b.v[i]);

    /* every truncation, trailing bytes, another magic or version: rejected */
    correlate_match *m = NULL;
    for (size_t len = 0; len < w.last.len; len++)
        assert_int_equal(correlate_match_decode(w.h.set, w.last.data, len, &m), -EINVAL);
    buf_putc(&w.last, 0);
    assert_int_equal(correlate_match_decode(w.h.set, w.last.data, w.last.len, &m), -EINVAL);
    w.last.len--;
    w.last.data[4] = 9;
    assert_int_equal(correlate_match_decode(w.h.set, w.last.data, w.last.len, &m), -EINVAL);
    w.last.data[4] = 1;
    w.last.data[0] = 'X';
    assert_int_equal(correlate_match_decode(w.h.set, w.last.data, w.last.len, &m), -EINVAL);
    w.last.data[0] = 'M';
    assert_null(m);

    /* a receiver without that correlation */
    ch other;
    ch_init(&other, EVENT_COUNT_YAML);
    assert_int_equal(correlate_match_decode(other.set, w.last.data, w.last.len, &m), -ENOENT);
    /* the same message delivered twice (at-least-once): the second is a counted duplicate */
    {
        correlate_engine *e2 = correlate_engine_create(w.h.set, NULL);
        ids sink = {0};
        for (int i = 0; i < 2; i++) {
            correlate_match *d = NULL;
            assert_int_equal(correlate_match_decode(w.h.set, w.last.data, w.last.len, &d), 0);
            correlate_engine_feed(e2, d, record, &sink);
            correlate_match_destroy(d);
        }
        correlate_stats st;
        correlate_engine_stats(e2, SIZE_MAX, &st);
        assert_int_equal(sink.n, 0);
        assert_int_equal(st.duplicates, 1);
        assert_int_equal(st.events, 1);
        correlate_engine_destroy(e2);
    }
    assert_true(correlate_rule_grouped_by_host(correlate_set_rule(other.set, 0))); /* ComputerName */
    for (size_t c = 0; c < correlate_set_count(w.h.set); c++) /* User, IpAddress: re-keyed */
        assert_false(correlate_rule_grouped_by_host(correlate_set_rule(w.h.set, c)));
    ch_fini(&other);

    buf_fini(&w.last);
    correlate_engine_destroy(w.direct);
    correlate_engine_destroy(w.via_wire);
    ch_fini(&w.h);
}

/* The origin envelope (the completing event's identity, beside a re-keyed match): round
 * trip with and without hosts; every truncation, a trailing byte, a bad version, a bad
 * presence flag and an empty tenant are -EINVAL; the record key separates tenants. */
static void test_origin_round_trip_and_rejections(void **state)
{
    (void)state;
    correlate_origin o = {.tenant = "acme", .tenant_len = 4, .agent_id = "ws-1", .agent_id_len = 4,
                          .host_name = "WS1.acme.local", .host_name_len = 14, .agent_hash = 0x1122334455667788ull,
                          .seq = 42, .index = 7, .ts_us = BASE_US, .received_us = BASE_US + 5};
    buf b;
    buf_init(&b);
    correlate_origin_encode(&o, &b);
    correlate_origin back;
    assert_int_equal(correlate_origin_decode(b.data, b.len, &back), 0);
    assert_int_equal(back.tenant_len, 4);
    assert_memory_equal(back.tenant, "acme", 4);
    assert_memory_equal(back.agent_id, "ws-1", 4);
    assert_null(back.host_id);
    assert_int_equal(back.host_name_len, 14);
    assert_memory_equal(back.host_name, "WS1.acme.local", 14);
    assert_true(back.agent_hash == o.agent_hash);
    assert_true(back.seq == 42 && back.index == 7);
    assert_true(back.ts_us == BASE_US && back.received_us == BASE_US + 5);
    for (size_t n = 0; n < b.len; n++) assert_int_equal(correlate_origin_decode(b.data, n, &back), -EINVAL);
    buf_append(&b, "x", 1);
    assert_int_equal(correlate_origin_decode(b.data, b.len, &back), -EINVAL);
    assert_null(back.tenant);
    b.len--;
    b.data[4] = 2; /* version */
    assert_int_equal(correlate_origin_decode(b.data, b.len, &back), -EINVAL);
    b.data[4] = 1;
    b.data[4 + 4 + 4 + 4 + 4 + 4] = 2; /* the host-id presence flag */
    assert_int_equal(correlate_origin_decode(b.data, b.len, &back), -EINVAL);
    assert_int_equal(correlate_origin_decode(NULL, 0, &back), -EINVAL);

    buf_clear(&b);
    correlate_origin empty = o;
    empty.tenant = "";
    empty.tenant_len = 0;
    correlate_origin_encode(&empty, &b);
    assert_int_equal(correlate_origin_decode(b.data, b.len, &back), -EINVAL);

    buf k1, k2;
    buf_init(&k1);
    buf_init(&k2);
    correlate_match_record_key("ab", "c", 1, &k1);
    correlate_match_record_key("a", "bc", 2, &k2);
    assert_int_equal(k1.len, 4);
    assert_true(k1.len != k2.len || memcmp(k1.data, k2.data, k1.len) != 0);
    assert_memory_equal(k1.data, "ab\x1f" "c", 4);
    buf_fini(&k1);
    buf_fini(&k2);
    buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trip_gives_the_same_alerts),
        cmocka_unit_test(test_origin_round_trip_and_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
