/* tests/unit/detect/test_correlate_load.c — Sigma correlation rules (detect/correlate.h) at the
 * edges of the engine: loader rejections with their lines, rule attributes, alert identity and
 * JSON, and the state serialization that carries windows across a restart. The engine's
 * semantics are in test_correlate.c. */
#include "correlate_helpers.h"

/* ---- the loader ----------------------------------------------------------------------------------- */

static const detect_problem *one_problem(detect_loader **lp, detect_ruleset **rsp, correlate_set **sp, const char *yaml)
{
    detect_options opt;
    detect_options_default(&opt);
    opt.correlations = true;
    *lp = detect_loader_create(&opt);
    detect_loader_add_text(*lp, "bad.yml", yaml, strlen(yaml));
    char err[256];
    assert_int_equal(detect_loader_build(*lp, rsp, err, sizeof err), 0);
    assert_int_equal(correlate_set_build(*lp, *rsp, sp), 0);
    const detect_report *r = detect_loader_report(*lp);
    if (r->problem_count != 1) harness_print_problems(r);
    assert_int_equal(r->problem_count, 1);
    assert_int_equal(r->rejected, 1);
    return &r->problems[0];
}

static void expect_rejection(const char *yaml, uint32_t line, const char *needle)
{
    detect_loader *l;
    detect_ruleset *rs;
    correlate_set *s;
    const detect_problem *p = one_problem(&l, &rs, &s, yaml);
    if (p->line != line || !strstr(p->message, needle))
        fprintf(stderr, "got line %u: %s (want line %u: ...%s...)\n", p->line, p->message, line, needle);
    assert_int_equal(p->reason, DETECT_REASON_CORRELATION);
    assert_string_equal(detect_reason_name(p->reason), "invalid correlation");
    assert_string_equal(p->file, "bad.yml");
    assert_int_equal(p->line, line);
    assert_non_null(strstr(p->message, needle));
    correlate_set_destroy(s);
    detect_ruleset_unref(rs);
    detect_loader_destroy(l);
}

#define CORR_HEAD "title: c\nid: c1\ncorrelation:\n" /* lines 1-3 */

static void test_loader_rejections(void **state)
{
    (void)state;
    expect_rejection(CORR_HEAD "    type: event_sum\n    rules: [failed_login]\n    timespan: 1h\n---\n" FAILED_LOGIN, 4,
                     "unknown correlation type 'event_sum'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    group-by: [User]\n"
                               "    timespan: 1w\n    condition:\n        gte: 3\n---\n" FAILED_LOGIN,
                     7, "timespan '1w'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n---\n" FAILED_LOGIN, 1,
                     "has no 'condition'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        lt: 5\n---\n" FAILED_LOGIN,
                     8, "needs a lower bound");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: 5\n        most: 3\n---\n" FAILED_LOGIN,
                     9, "unknown condition operator 'most'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: many\n---\n" FAILED_LOGIN,
                     8, "must be a number");
    expect_rejection(CORR_HEAD "    type: value_sum\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: 5\n---\n" FAILED_LOGIN,
                     8, "needs 'field'");
    expect_rejection(CORR_HEAD "    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: 5\n        field: User\n---\n" FAILED_LOGIN,
                     9, "'field' is only for");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules:\n        - failed_login\n        - nowhere\n"
                               "    timespan: 5m\n---\n" FAILED_LOGIN,
                     7, "references 'nowhere'");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules: [failed_login]\n    group-by: [ip]\n    timespan: 5m\n"
                               "    aliases:\n        host:\n            failed_login: Computer\n---\n" FAILED_LOGIN,
                     9, "alias 'host' is not in 'group-by'");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules: [failed_login]\n    timespan: 5m\n    condition:\n"
                               "        gte: 2\n---\n" FAILED_LOGIN,
                     8, "cannot hold");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules: [failed_login, failed_login]\n    timespan: 5m\n---\n" FAILED_LOGIN,
                     5, "lists 'failed_login' twice");
    expect_rejection("title: c\nid: 5638f7c0-ac70-491d-8465-2a65075e0d86\ncorrelation:\n    type: temporal\n"
                     "    rules: [failed_login]\n    timespan: 5m\n---\n" FAILED_LOGIN,
                     1, "already the id of rule");
    expect_rejection("title: c\nname: failed_login\ncorrelation:\n    type: temporal\n    rules: [5638f7c0-ac70-491d-8465-2a65075e0d86]\n"
                     "    timespan: 5m\n---\n" FAILED_LOGIN,
                     1, "already the name of rule");
    expect_rejection(CORR_HEAD "    type: temporal\n    rules: [failed_login]\n    timespan: 5m\ngenerate: maybe\n---\n" FAILED_LOGIN,
                     7, "'generate' must be true or false");
    /* a loop: both members rejected, each naming where */
    {
        detect_options opt;
        detect_options_default(&opt);
        opt.correlations = true;
        detect_loader *l = detect_loader_create(&opt);
        const char *yaml = "title: a\nname: ca\ncorrelation:\n    type: temporal\n    rules: [cb, failed_login]\n"
                           "    timespan: 5m\n---\n"
                           "title: b\nname: cb\ncorrelation:\n    type: temporal\n    rules: [ca]\n    timespan: 5m\n---\n"
                           "title: d\nname: cd\ncorrelation:\n    type: temporal\n    rules: [cb]\n    timespan: 5m\n---\n"
                           "title: e\nname: ce\ncorrelation:\n    type: temporal\n    rules: [failed_login]\n"
                           "    timespan: 5m\n---\n" FAILED_LOGIN;
        detect_loader_add_text(l, "loop.yml", yaml, strlen(yaml));
        detect_ruleset *rs;
        correlate_set *s;
        char err[128];
        assert_int_equal(detect_loader_build(l, &rs, err, sizeof err), 0);
        assert_int_equal(correlate_set_build(l, rs, &s), 0);
        const detect_report *r = detect_loader_report(l);
        assert_int_equal(r->by_reason[DETECT_REASON_CORRELATION], 3);
        assert_int_equal(r->correlations, 1);
        assert_int_equal(correlate_set_count(s), 1);
        assert_string_equal(correlate_set_rule(s, 0)->info.title, "e");
        bool loop = false;
        for (size_t i = 0; i < r->problem_count; i++) {
            assert_true(r->problems[i].line > 0);
            loop |= strstr(r->problems[i].message, "loops back") != NULL;
        }
        assert_true(loop);
        correlate_set_destroy(s);
        detect_ruleset_unref(rs);
        detect_loader_destroy(l);
    }
    /* without the option, correlation documents are skipped as before */
    {
        harness h;
        harness_init(&h, EVENT_COUNT_YAML);
        assert_int_equal(harness_report(&h)->by_reason[DETECT_REASON_SKIP_CORRELATION], 1);
        harness_fini(&h);
    }
}

static void test_loader_attributes(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, "title: Brute force\nid: c1\nname: bf\nstatus: test\nlevel: high\ntags:\n    - attack.credential-access\n"
                "    - attack.t1110.001\ncorrelation:\n    type: value_count\n    rules: failed_login\n"
                "    group-by: Computer\n    timespan: 90m\n    condition:\n        field: [User, IpAddress]\n"
                "        gt: 5\n        lte: 200\n---\n" FAILED_LOGIN);
    const correlate_rule *r = correlate_set_rule(h.set, 0);
    assert_int_equal(r->type, CORRELATE_VALUE_COUNT);
    assert_string_equal(correlate_type_name(r->type), "value_count");
    assert_int_equal(r->timespan_us, 90 * 60 * 1000000LL);
    assert_int_equal(r->group_count, 1);
    assert_string_equal(r->group_by[0], "Computer");
    assert_int_equal(r->field_count, 2);
    assert_string_equal(r->info.level_name, "high");
    assert_int_equal(r->info.attack_count, 1);
    assert_string_equal(r->info.attack_ids[0], "T1110.001");
    assert_int_equal(r->info.line, 1);
    assert_string_equal(r->info.file, "corr.yml");
    /* pairs (User, IpAddress): six distinct pairs from three users */
    const char *pairs[] = {"\"User\":\"a\",\"IpAddress\":\"1.1.1.1\"", "\"User\":\"a\",\"IpAddress\":\"1.1.1.2\"",
                           "\"User\":\"b\",\"IpAddress\":\"1.1.1.1\"", "\"User\":\"b\",\"IpAddress\":\"1.1.1.1\"",
                           "\"User\":\"b\",\"IpAddress\":\"1.1.1.2\"", "\"User\":\"c\",\"IpAddress\":\"1.1.1.1\"",
                           "\"User\":\"c\",\"IpAddress\":\"1.1.1.3\""};
    for (size_t i = 0; i < MAMORI_ARRAY_LEN(pairs); i++) sec(&h, "x", (double)i, 4625, pairs[i]);
    assert_int_equal(h.count, 1);
    assert_true(h.alerts[0].value == 6);
    assert_string_equal(h.alerts[0].group, "ws1"); /* Computer: the System alias */
    ch_fini(&h);
}

/* ---- alerts, state ---------------------------------------------------------------------------------- */

static void test_alert_identity_and_json(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, TEMPORAL_ORDERED_YAML);
    const double t[] = {0, 10, 20};
    recon(&h, "abc", t, NULL);
    char first[33];
    assert_int_equal(h.count, 1);
    memcpy(first, h.alerts[0].id, 33);
    assert_int_equal(strlen(first), 32);
    ch_engine(&h);
    recon(&h, "abc", t, NULL);
    assert_string_equal(h.alerts[0].id, first); /* same correlation, key, first event */
    ch_engine(&h);
    recon(&h, "abc", t, "alice");
    assert_string_not_equal(h.alerts[0].id, first);

    /* the JSON shape */
    const char *ids[] = {"e1", "e2"};
    const char *values[] = {"ws1", "bob"};
    correlate_alert a = {.rule = correlate_set_rule(h.set, 0),
                         .group_values = values,
                         .event_ids = ids,
                         .event_count = 2,
                         .first_us = BASE_US,
                         .last_us = BASE_US + 1500000,
                         .value = 3,
                         .group_key = "k",
                         .group_key_len = 1};
    buf b;
    buf_init(&b);
    correlate_alert_write_json(&b, &a);
    char id[33];
    correlate_alert_id(&a, id);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"id\":\"%s\",\"type\":\"temporal_ordered\",\"timespan\":\"5m\",\"group\":{\"ComputerName\":\"ws1\","
             "\"User\":\"bob\"},\"window\":{\"first\":\"2024-05-01T12:00:00.000000Z\",\"last\":"
             "\"2024-05-01T12:00:01.500000Z\"},\"value\":3,\"event_count\":2,\"events\":[\"e1\",\"e2\"]}",
             id);
    assert_string_equal(buf_cstr(&b), want);
    buf_fini(&b);
    ch_fini(&h);
}

static void test_state_round_trip(void **state)
{
    (void)state;
    ch h;
    ch_init(&h, CHAIN_YAML);
    /* half a sequence: 10 failures for bob (the inner alert fed the outer state), 3 for alice */
    for (int i = 0; i < 10; i++) sec(&h, "fb", i, 4625, "\"User\":\"bob\"");
    for (int i = 0; i < 3; i++) sec(&h, "fa", i, 4625, "\"User\":\"alice\"");
    assert_int_equal(alerts_emitted(&h), 0);
    buf enc[2];
    for (size_t c = 0; c < 2; c++) {
        buf_init(&enc[c]);
        correlate_state_encode(h.eng, c, &enc[c]);
    }
    int64_t wm = correlate_engine_watermark(h.eng);

    /* a fresh engine (a restart) resumes from the bytes */
    ch_engine(&h);
    for (size_t c = 0; c < 2; c++) assert_int_equal(correlate_state_decode(h.eng, c, enc[c].data, enc[c].len), 0);
    assert_int_equal(correlate_engine_watermark(h.eng), wm);
    buf again;
    buf_init(&again);
    for (size_t c = 0; c < 2; c++) {
        buf_clear(&again);
        correlate_state_encode(h.eng, c, &again);
        assert_int_equal(again.len, enc[c].len);
        assert_memory_equal(again.data, enc[c].data, again.len);
    }
    sec(&h, "ok", 20, 4624, "\"User\":\"bob\"");
    assert_int_equal(alerts_emitted(&h), 1);
    assert_string_equal(last_emitted(&h)->ids, "fb,ok"); /* same label for every failure: listed once */
    for (int i = 0; i < 7; i++) sec(&h, "fa2", 21 + i, 4625, "\"User\":\"alice\"");
    sec(&h, "ok2", 30, 4624, "\"User\":\"alice\"");
    assert_int_equal(alerts_emitted(&h), 2);
    assert_string_equal(last_emitted(&h)->ids, "fa,fa2,ok2");

    /* malformed: every truncation, a flipped version, another correlation's state */
    for (size_t c = 0; c < 2; c++) {
        for (size_t n = 0; n < enc[c].len; n++) assert_int_equal(correlate_state_decode(h.eng, c, enc[c].data, n), -EINVAL);
        correlate_stats s;
        correlate_engine_stats(h.eng, c, &s);
        assert_int_equal(s.keys, 0); /* a rejected state leaves nothing behind */
    }
    assert_int_equal(correlate_state_decode(h.eng, 0, enc[1].data, enc[1].len), -EINVAL);
    enc[0].data[4] = 9;
    assert_int_equal(correlate_state_decode(h.eng, 0, enc[0].data, enc[0].len), -EINVAL);
    enc[0].data[4] = CORRELATE_STATE_VERSION;
    enc[0].data[enc[0].len - 1] = 'x'; /* the last data string loses its NUL */
    assert_int_equal(correlate_state_decode(h.eng, 0, enc[0].data, enc[0].len), -EINVAL);

    /* decoding into an engine with smaller bounds evicts, counted */
    correlate_options small;
    correlate_options_default(&small);
    small.keys_max = 1;
    correlate_engine *e2 = correlate_engine_create(h.set, &small);
    buf_clear(&again);
    correlate_engine_destroy(h.eng);
    h.eng = correlate_engine_create(h.set, NULL);
    sec(&h, "x1", 0, 4625, "\"User\":\"u1\"");
    sec(&h, "x2", 1, 4625, "\"User\":\"u2\"");
    size_t inner = strcmp(correlate_set_rule(h.set, 0)->info.title, "Multiple failed logons") == 0 ? 0 : 1;
    correlate_state_encode(h.eng, inner, &again);
    assert_int_equal(correlate_state_decode(e2, inner, again.data, again.len), 0);
    correlate_stats s;
    correlate_engine_stats(e2, inner, &s);
    assert_int_equal(s.keys, 1);
    assert_int_equal(s.evicted_keys, 1);
    correlate_engine_destroy(e2);
    buf_fini(&again);
    for (size_t c = 0; c < 2; c++) buf_fini(&enc[c]);
    ch_fini(&h);
}

/* A restart: the state written by one process is read by a new one that loaded the same
 * rules again (another set, another engine), and the half-seen sequence completes once. */
static void test_state_survives_reload(void **state)
{
    (void)state;
    ch before, after;
    ch_init(&before, TEMPORAL_ORDERED_YAML);
    const double t[] = {0, 10};
    recon(&before, "ab", t, NULL);
    assert_int_equal(before.count, 0);
    buf enc;
    buf_init(&enc);
    correlate_state_encode(before.eng, 0, &enc);
    ch_fini(&before);

    ch_init(&after, TEMPORAL_ORDERED_YAML);
    assert_int_equal(correlate_state_decode(after.eng, 0, enc.data, enc.len), 0);
    const double t2[] = {20};
    recon(&after, "c", t2, NULL);
    assert_int_equal(after.count, 1);
    assert_string_equal(after.alerts[0].ids, "a0,b1,c0");
    recon(&after, "c", t2, NULL); /* consumed: no second alert */
    assert_int_equal(after.count, 1);
    /* the state does not fit a correlation of another type under the same title */
    ch other;
    ch_init(&other, "title: Recon ordered\ncorrelation:\n    type: temporal\n    rules:\n        - recon_cmd_a\n"
                    "        - recon_cmd_b\n        - recon_cmd_c\n    group-by:\n        - ComputerName\n"
                    "        - User\n    timespan: 5m\n---\n" RECON_RULES);
    assert_int_equal(correlate_state_decode(other.eng, 0, enc.data, enc.len), -EINVAL);
    ch_fini(&other);
    buf_fini(&enc);
    ch_fini(&after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_rejections),
        cmocka_unit_test(test_loader_attributes),
        cmocka_unit_test(test_alert_identity_and_json),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_survives_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
