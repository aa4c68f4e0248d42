/* Unit tests: bus/kafka_codec.c — one batch to one Kafka message and back (no broker): the
 * identity headers, the NDJSON value, and each event's storage position (index, ts_us) kept
 * exactly, also when ingest rejected lines (gaps in indexes) or distrusted an event's time;
 * the fallbacks for external producers (key "tenant/agent", seq = offset + 1, line number as
 * index); malformed messages refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "bus/bus.h"
#include "bus/kafka_codec.h"
#include "core/json.h"

#define DAY_US (86400LL * 1000000)
static const int64_t RECEIVED_US = 1764115200000000LL; /* 2025-11-26T00:00:00Z */

static const char *const LINES[] = {
    "{\"@timestamp\":\"2025-11-25T23:59:58.5Z\",\"event\":{\"category\":\"process\"},\"process\":{\"name\":\"cmd.exe\",\"pid\":42}}",
    /* 30 days old: over max_past, stored at the receive time */
    "{\"@timestamp\":\"2025-10-27T00:00:00Z\",\"event\":{\"category\":\"file\"},\"file\":{\"path\":\"C:\\\\x.txt\"}}",
    "{\"event\":{\"category\":\"network\"},\"destination\":{\"ip\":\"10.0.0.1\",\"port\":443}}",
};

/* A batch like ingest builds it: events normalized at line positions 0, 2, 5 (lines 1, 3, 4
 * were rejected), with ingest's time bounds (7 days back, 1 hour ahead). */
static bus_batch *ingest_batch(void)
{
    bus_batch *b = bus_batch_create(64 * 1024);
    b->tenant = arena_strndup(&b->arena, "acme", 4);
    b->agent_id = arena_strndup(&b->arena, "ws-0042", 7);
    b->tenant_hash = event_tenant_hash(b->tenant);
    b->agent_hash = event_agent_hash(b->tenant, b->agent_id);
    b->seq = 4183;
    b->received_us = RECEIVED_US;
    b->rejected_count = 3;
    json_parser *p = json_parser_create();
    normalizer *n = normalizer_create();
    event_stamp stamp = {.tenant = b->tenant, .agent_id = b->agent_id, .agent_hash = b->agent_hash, .seq = b->seq,
                         .received_us = b->received_us, .max_past_us = 7 * DAY_US, .max_future_us = 3600LL * 1000000};
    static const uint32_t positions[] = {0, 2, 5};
    b->events = arena_alloc(&b->arena, 3 * sizeof *b->events);
    for (uint32_t i = 0; i < 3; i++) {
        json_value v;
        json_error jerr;
        char why[128];
        assert_int_equal(json_parse(p, &b->arena, LINES[i], strlen(LINES[i]), &v, &jerr), 0);
        assert_int_equal(normalize_event(n, &b->arena, EVENT_FORMAT_ECS, &v, &stamp, positions[i], &b->events[i], why,
                                         sizeof why),
                         0);
    }
    b->event_count = 3;
    json_parser_destroy(p);
    normalizer_destroy(n);
    return b;
}

static const kafka_header *header(const kafka_message *m, const char *name)
{
    for (uint32_t i = 0; i < m->header_count; i++)
        if (!strcmp(m->headers[i].name, name)) return &m->headers[i];
    return NULL;
}

static void assert_header(const kafka_message *m, const char *name, const char *value)
{
    const kafka_header *h = header(m, name);
    assert_non_null(h);
    assert_int_equal(h->value_len, strlen(value));
    assert_memory_equal(h->value, value, h->value_len);
}

static void test_encode_format(void **state)
{
    (void)state;
    bus_batch *b = ingest_batch();
    kafka_message m;
    kafka_encode_batch(b, &m);
    assert_int_equal(m.key_len, strlen("acme/ws-0042"));
    assert_memory_equal(m.key, "acme/ws-0042", m.key_len);
    assert_header(&m, KAFKA_HEADER_TENANT, "acme");
    assert_header(&m, KAFKA_HEADER_AGENT, "ws-0042");
    assert_header(&m, KAFKA_HEADER_SEQ, "4183");
    assert_header(&m, KAFKA_HEADER_RECEIVED, "1764115200000000");
    assert_header(&m, KAFKA_HEADER_REJECTED, "3");
    assert_header(&m, KAFKA_HEADER_FORMAT, "ecs");
    /* the value is the canonical JSON of each event, one per line */
    size_t pos = 0;
    for (uint32_t i = 0; i < b->event_count; i++) {
        assert_memory_equal(m.value + pos, b->events[i].json, b->events[i].json_len);
        pos += b->events[i].json_len;
        assert_int_equal(m.value[pos], '\n');
        pos++;
    }
    assert_int_equal(pos, m.value_len);
    const kafka_header *keys = header(&m, KAFKA_HEADER_EVENT_KEYS);
    assert_non_null(keys);
    assert_int_equal(keys->value_len, 3 * KAFKA_EVENT_KEY_BYTES);
    const uint8_t *k = keys->value;
    assert_int_equal(mamori_get_be32(k + 12), 2);
    assert_int_equal((int64_t)mamori_get_be64(k + 16), RECEIVED_US); /* the distrusted time */
    bus_batch_destroy(b);
}

static void test_round_trip_keeps_storage_positions(void **state)
{
    (void)state;
    bus_batch *b = ingest_batch();
    assert_int_equal(b->events[1].ts_us, RECEIVED_US); /* precondition: ingest distrusted it */
    kafka_message m;
    kafka_encode_batch(b, &m);
    m.offset = 77;
    m.timestamp_us = RECEIVED_US + 5;
    /* a consumer without ingest's bounds must still get the same keys: they come from the header */
    kafka_decoder d;
    kafka_decoder_init(&d, 10000, 16 << 20, 0, 0);
    bus_batch *got = bus_batch_create(64 * 1024);
    char err[160];
    assert_int_equal(kafka_decode_batch(&d, &m, got, err, sizeof err), 0);
    assert_string_equal(got->tenant, "acme");
    assert_string_equal(got->agent_id, "ws-0042");
    assert_true(got->tenant_hash == b->tenant_hash);
    assert_true(got->agent_hash == b->agent_hash);
    assert_int_equal(got->seq, 4183);
    assert_int_equal(got->received_us, RECEIVED_US);
    assert_int_equal(got->rejected_count, 3);
    assert_int_equal(got->event_count, 3);
    assert_int_equal(d.reread_failures, 0);
    for (uint32_t i = 0; i < 3; i++) {
        const mamori_event *x = &b->events[i], *y = &got->events[i];
        assert_int_equal(y->index, x->index);
        assert_true(y->ts_us == x->ts_us);
        /* normalizing a normalized event gives the same event */
        assert_int_equal(y->json_len, x->json_len);
        assert_memory_equal(y->json, x->json, x->json_len);
        assert_int_equal(y->field_count, x->field_count);
        for (uint32_t f = 0; f < x->field_count; f++) assert_string_equal(y->fields[f].path, x->fields[f].path);
    }
    assert_non_null(event_get_cstr(&got->events[0], "process.name"));
    /* and it encodes to the same message again (a redelivered batch is the same batch) */
    kafka_message again;
    kafka_encode_batch(got, &again);
    assert_int_equal(again.value_len, m.value_len);
    assert_memory_equal(again.value, m.value, m.value_len);
    assert_memory_equal(header(&again, KAFKA_HEADER_EVENT_KEYS)->value, header(&m, KAFKA_HEADER_EVENT_KEYS)->value,
                        3 * KAFKA_EVENT_KEY_BYTES);
    bus_batch_destroy(got);
    bus_batch_destroy(b);
    kafka_decoder_fini(&d);
}

/* Events normalized from Windows logs (ingest's winlog path) read back as ECS unchanged. */
static void test_winlog_events_read_back_unchanged(void **state)
{
    (void)state;
    static const char *const raw[] = {
        "{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Hostname\":\"WS1\","
        "\"UtcTime\":\"2025-11-25 23:00:00.123\",\"Image\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\","
        "\"CommandLine\":\"cmd.exe /c whoami\",\"ParentImage\":\"C:\\\\x\\\\p.exe\",\"User\":\"CORP\\\\bob\","
        "\"Hashes\":\"SHA256=AB12,MD5=CD34\",\"ProcessGuid\":\"{1}\",\"ProcessId\":42}",
        "{\"Event\":{\"System\":{\"EventID\":3,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\","
        "\"TimeCreated\":{\"#attributes\":{\"SystemTime\":\"2025-11-25T23:00:01Z\"}}},"
        "\"EventData\":{\"Image\":\"C:\\\\a.exe\",\"DestinationIp\":\"10.1.2.3\",\"DestinationPort\":443}}}",
    };
    bus_batch *b = bus_batch_create(64 * 1024);
    b->tenant = arena_strndup(&b->arena, "acme", 4);
    b->agent_id = arena_strndup(&b->arena, "ws-1", 4);
    b->tenant_hash = event_tenant_hash(b->tenant);
    b->agent_hash = event_agent_hash(b->tenant, b->agent_id);
    b->seq = 9;
    b->received_us = RECEIVED_US;
    json_parser *p = json_parser_create();
    normalizer *n = normalizer_create();
    event_stamp stamp = {.tenant = b->tenant, .agent_id = b->agent_id, .agent_hash = b->agent_hash, .seq = b->seq,
                         .received_us = b->received_us};
    b->events = arena_alloc(&b->arena, 2 * sizeof *b->events);
    for (uint32_t i = 0; i < 2; i++) {
        json_value v;
        json_error jerr;
        char why[128];
        assert_int_equal(json_parse(p, &b->arena, raw[i], strlen(raw[i]), &v, &jerr), 0);
        assert_int_equal(normalize_event(n, &b->arena, EVENT_FORMAT_WINLOG, &v, &stamp, i, &b->events[i], why,
                                         sizeof why),
                         0);
    }
    b->event_count = 2;
    kafka_message m;
    kafka_encode_batch(b, &m);
    kafka_decoder d;
    kafka_decoder_init(&d, 100, 1 << 20, 0, 0);
    bus_batch *got = bus_batch_create(64 * 1024);
    char err[160];
    assert_int_equal(kafka_decode_batch(&d, &m, got, err, sizeof err), 0);
    assert_int_equal(got->event_count, 2);
    for (uint32_t i = 0; i < 2; i++) {
        assert_int_equal(got->events[i].json_len, b->events[i].json_len);
        assert_memory_equal(got->events[i].json, b->events[i].json, b->events[i].json_len);
        assert_int_equal(got->events[i].field_count, b->events[i].field_count);
        assert_true(got->events[i].ts_us == b->events[i].ts_us);
    }
    assert_non_null(event_get_cstr(&got->events[0], "process.command_line"));
    assert_non_null(event_get_cstr(&got->events[1], "destination.ip"));
    bus_batch_destroy(got);
    bus_batch_destroy(b);
    kafka_decoder_fini(&d);
    json_parser_destroy(p);
    normalizer_destroy(n);
}

static void test_external_producer_fallbacks(void **state)
{
    (void)state;
    /* what `kcat -k acme/host-7` writes: no mamori.* headers at all */
    const char *value = "{\"@timestamp\":\"2025-11-25T23:00:00Z\",\"process\":{\"name\":\"a\"}}\n"
                        "\n"
                        "not json\n"
                        "{\"process\":{\"name\":\"b\"}}";
    kafka_message m = {.key = "acme/host-7", .key_len = 11, .value = value, .value_len = strlen(value), .offset = 9,
                       .timestamp_us = RECEIVED_US};
    kafka_decoder d;
    kafka_decoder_init(&d, 10000, 16 << 20, 7 * DAY_US, 3600LL * 1000000);
    bus_batch *b = bus_batch_create(16 * 1024);
    char err[160];
    assert_int_equal(kafka_decode_batch(&d, &m, b, err, sizeof err), 0);
    assert_string_equal(b->tenant, "acme");
    assert_string_equal(b->agent_id, "host-7");
    assert_int_equal(b->seq, 10); /* offset + 1 */
    assert_int_equal(b->received_us, RECEIVED_US);
    assert_int_equal(b->event_count, 2);
    assert_int_equal(b->rejected_count, 1);
    assert_int_equal(d.reread_failures, 0); /* a bad line from outside is a rejection, not a bug */
    assert_int_equal(b->events[0].index, 0);
    assert_int_equal(b->events[1].index, 3); /* line positions, blank and bad lines counted */
    assert_true(b->events[0].ts_us == RECEIVED_US - 3600LL * 1000000);
    assert_true(b->events[1].ts_us == RECEIVED_US); /* no time: the receive time */
    bus_batch_destroy(b);
    kafka_decoder_fini(&d);
}

static void test_malformed_messages_refused(void **state)
{
    (void)state;
    kafka_decoder d;
    kafka_decoder_init(&d, 2, 1024, 0, 0);
    char err[160];
    const char *value = "{\"a\":1}\n";
    struct {
        kafka_message m;
        const char *reason;
    } cases[] = {
        {{.key = "no-slash", .key_len = 8, .value = value, .value_len = 8, .offset = 1}, "no tenant"},
        {{.key = "/agent", .key_len = 6, .value = value, .value_len = 8, .offset = 1}, "tenant must be"},
        {{.key = "t/a", .key_len = 3, .value = value, .value_len = 8, .offset = 1,
          .headers = {{KAFKA_HEADER_SEQ, "0", 1}}, .header_count = 1},
         "mamori.seq"},
        {{.key = "t/a", .key_len = 3, .value = value, .value_len = 8, .offset = 1,
          .headers = {{KAFKA_HEADER_SEQ, "12x", 3}}, .header_count = 1},
         "mamori.seq"},
        {{.key = "t/a", .key_len = 3, .value = value, .value_len = 8, .offset = 1,
          .headers = {{KAFKA_HEADER_EVENT_KEYS, "0123456789a", 11}}, .header_count = 1},
         "mamori.event_keys"},
        {{.key = "t/a", .key_len = 3, .value = "{}\n{}\n{}\n", .value_len = 9, .offset = 1}, "more events"},
        {{.key = "t/a", .key_len = 3, .value = value, .value_len = 8, .offset = 1,
          .headers = {{KAFKA_HEADER_FORMAT, "xml", 3}}, .header_count = 1},
         "mamori.format"},
        /* rejected near 2^32 plus a line that does not parse would wrap the count to 0 */
        {{.key = "t/a", .key_len = 3, .value = "not json\n", .value_len = 9, .offset = 1,
          .headers = {{KAFKA_HEADER_REJECTED, "4294967295", 10}}, .header_count = 1},
         "mamori.rejected"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bus_batch *b = bus_batch_create(4096);
        err[0] = '\0';
        assert_int_equal(kafka_decode_batch(&d, &cases[i].m, b, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, cases[i].reason));
        bus_batch_destroy(b);
    }
    /* headers win over the key; the last of repeated headers wins */
    kafka_message m = {.key = "t/a", .key_len = 3, .value = value, .value_len = 8, .offset = 1,
                       .headers = {{KAFKA_HEADER_TENANT, "acme", 4},
                                   {KAFKA_HEADER_AGENT, "x", 1},
                                   {KAFKA_HEADER_SEQ, "5", 1},
                                   {KAFKA_HEADER_SEQ, "6", 1}},
                       .header_count = 4};
    bus_batch *b = bus_batch_create(4096);
    assert_int_equal(kafka_decode_batch(&d, &m, b, err, sizeof err), 0);
    assert_string_equal(b->tenant, "acme");
    assert_string_equal(b->agent_id, "x");
    assert_int_equal(b->seq, 6);
    bus_batch_destroy(b);
    kafka_decoder_fini(&d);
}

/* The message timestamp is the producer's choice: a huge one must not overflow to µs. */
static void test_message_timestamp_scaled_safely(void **state)
{
    (void)state;
    assert_int_equal(kafka_timestamp_us(1764115200000LL), RECEIVED_US);
    assert_int_equal(kafka_timestamp_us(0), 0);
    assert_int_equal(kafka_timestamp_us(-1), 0);
    assert_int_equal(kafka_timestamp_us(INT64_MAX), 0);
    assert_int_equal(kafka_timestamp_us(INT64_MAX / 1000 + 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_format),
        cmocka_unit_test(test_round_trip_keeps_storage_positions),
        cmocka_unit_test(test_winlog_events_read_back_unchanged),
        cmocka_unit_test(test_external_producer_fallbacks),
        cmocka_unit_test(test_malformed_messages_refused),
        cmocka_unit_test(test_message_timestamp_scaled_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
